"""Endpoints and request bodies the sandbox tests send (written from spec.md, not products/)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from wxpay_async import Endpoint, WxPayClient
from wxpay_async.crypto import Padding
from wxpay_async.sandbox import DEFAULT_SP_APPID, DEFAULT_SUB_MCHID, SANDBOX_MCHID
from wxpay_async.trust import RawResponse

CONTACT = ("contact.name", "contact.phone", "contact.email")
H5 = "/v3/global/merchant/h5/permission"
PAYSCORE = "/v3/payscore/acquiringbank/permissions"

HK_CREATE = Endpoint(
    name="hk.create",
    method="POST",
    host="mainland",
    path="/hk/v3/merchants",
    idempotency_key=True,
    encrypted_fields=CONTACT,
    padding=Padding.PKCS1V15,
)
HK_MODIFY = Endpoint(
    name="hk.modify",
    method="PUT",
    host="mainland",
    path="/hk/v3/merchants",
    encrypted_fields=CONTACT,
    padding=Padding.PKCS1V15,
)
HK_GET = Endpoint(name="hk.get", method="GET", host="mainland", path="/hk/v3/merchants/{sub_mchid}")
H5_CREATE = Endpoint(name="h5.create", method="POST", host="global_", path=f"{H5}/applications")
H5_STATE = Endpoint(name="h5.state", method="GET", host="global_", path=f"{H5}/{{sub_mchid}}")
H5_GET = Endpoint(
    name="h5.get", method="GET", host="global_", path=f"{H5}/applications/{{applyment_id}}"
)
H5_PATCH = Endpoint(
    name="h5.patch", method="PATCH", host="global_", path=f"{H5}/applications/{{applyment_id}}"
)
DOMAIN_CREATE = Endpoint(
    name="h5.domain", method="POST", host="global_", path=f"{H5}/domain/applications"
)
DOMAIN_GET = Endpoint(
    name="h5.domain.get",
    method="GET",
    host="global_",
    path=f"{H5}/domain/applications/{{applyment_id}}",
)
DOMAIN_PATCH = Endpoint(
    name="h5.domain.patch",
    method="PATCH",
    host="global_",
    path=f"{H5}/domain/applications/{{applyment_id}}",
)
PS_APPLY = Endpoint(name="ps.apply", method="POST", host="mainland", path=PAYSCORE)
PS_QUERY = Endpoint(
    name="ps.query",
    method="GET",
    host="mainland",
    path=f"{PAYSCORE}/authorization-code/{{authorization_code}}",
)
PS_TERMINATE = Endpoint(
    name="ps.terminate",
    method="POST",
    host="mainland",
    path=f"{PAYSCORE}/authorization-code/{{authorization_code}}/terminate",
)
MEDIA = Endpoint(
    name="media.upload",
    method="POST",
    host="global_",
    path="/v3/merchant/media/upload",
    retry_safe=True,
)
TCB_AUTH = Endpoint(
    name="tcb.auth", method="POST", host="weixin", path="/tcb/wxpayopenauth", protocol="weixin"
)
TCB_LIST = Endpoint(
    name="tcb.list", method="POST", host="weixin", path="/tcb/wxpaylist", protocol="weixin"
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def hk_application(**changes: Any) -> dict[str, Any]:
    """A valid A4.1 body (plaintext contact: the client encrypts it)."""
    body: dict[str, Any] = {
        "sp_appid": DEFAULT_SP_APPID,
        "sp_mchid": SANDBOX_MCHID,
        "name": "Fruit Store Limited",
        "shortname": "Fruit",
        "office_phone": "+85228886888",
        "contact": {"name": "Chan Tai Man", "phone": "+85291234567", "email": "tm@example.com"},
        "business_category": 343,
        "merchant_country_code": "344",
        "merchant_type": "ENTERPRISE",
        "registration_certificate_number": "5555-8888",
        "registration_certificate_date": "2030-10-16",
        "business": {"business_type": "ONLINE", "mcc": "5344", "mini_program": "flowerplus"},
        "director": {"name": "Tom", "number": "1234567890"},
    }
    body.update(changes)
    return body


def h5_application(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sub_mchid": DEFAULT_SUB_MCHID,
        "domains": ["shop.example.com"],
        "website_url": "https://shop.example.com",
        "notify_url": "https://merchant.example/h5/notify",
    }
    body.update(changes)
    return body


def payscore_request(code: str = "AUTH_0001", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_id": "500001",
        "channel_id": "1230000109",
        "appid": "wxd678efh567hg6787",
        "sub_mchid": DEFAULT_SUB_MCHID,
        "authorization_code": code,
        "notify_url": "https://merchant.example/payscore/notify",
    }
    body.update(changes)
    return body


def image_type(data: bytes) -> str:
    """The part Content-Type spec B10 names for the image ``data`` (PNG unless JPEG or BMP)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpg"
    return "image/bmp" if data.startswith(b"BM") else "image/png"


def multipart(
    meta: bytes, data: bytes, filename: str, boundary: str = "sandboxBoundary42"
) -> bytes:
    """The two-part form of §B10, laid out as the official SDKs do."""
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="meta"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + meta
        + f"\r\n--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {image_type(data)}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def media_meta(data: bytes, filename: str = "shop.png") -> bytes:
    return json.dumps(
        {"filename": filename, "sha256": hashlib.sha256(data).hexdigest()}, separators=(",", ":")
    ).encode()


async def upload(
    client: WxPayClient, data: bytes = PNG, filename: str = "shop.png", meta: bytes | None = None
) -> RawResponse:
    meta = meta if meta is not None else media_meta(data, filename)
    return await client.send(
        MEDIA,
        body=multipart(meta, data, filename),
        sign_body=meta,
        content_type="multipart/form-data; boundary=sandboxBoundary42",
    )


async def send_json(
    client: WxPayClient,
    endpoint: Endpoint,
    payload: Any = None,
    **kwargs: Any,
) -> RawResponse:
    """Encrypt declared fields, serialize once, send."""
    body, headers = (None, {}) if payload is None else await client.prepare_json(endpoint, payload)
    return await client.send(endpoint, body=body, headers=headers, **kwargs)


def document(raw: RawResponse) -> Any:
    return json.loads(raw.body)
