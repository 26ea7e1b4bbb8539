"""Image upload (signature over meta) and platform certificates, including rotation."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.sandbox.helpers import (
    HK_CREATE,
    MEDIA,
    PNG,
    document,
    hk_application,
    media_meta,
    multipart,
    send_json,
    upload,
)
from wxpay_async import BadRequestError, Endpoint, SignatureRejectedError, WxPayClient
from wxpay_async.sandbox import Sandbox
from wxpay_async.trust import CertificateTrust, parse_certificate_download

JPEG = b"\xff\xd8\xff\xe0" + b"\x01" * 100
BMP = b"BM" + b"\x02" * 100


@pytest.mark.parametrize(
    ("data", "filename"), [(PNG, "a.png"), (JPEG, "photo.JPG"), (JPEG, "p.jpeg"), (BMP, "s.bmp")]
)
async def test_upload_returns_a_media_id(
    sb: Sandbox, client: WxPayClient, data: bytes, filename: str
) -> None:
    media_id = document(await upload(client, data, filename))["media_id"]
    stored = sb.state.media[media_id]
    assert (stored.filename, stored.sha256) == (filename, hashlib.sha256(data).hexdigest())
    assert len(media_id) > 32  # real media IDs are longer than the documented 32


@pytest.mark.parametrize(
    ("data", "filename", "meta", "field"),
    [
        (PNG, "a.gif", None, "/meta/filename"),
        (PNG, "a.png", b'{"filename":"a.png","sha256":"' + b"0" * 64 + b'"}', "/meta/sha256"),
        (PNG, "a.png", b'{"filename":"a.png"}', "/meta/sha256"),
        (b"GIF89a" + b"\x00" * 10, "a.png", None, "/file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 1024 * 1024), "big.png", None, "/file"),
    ],
)
async def test_upload_rules(
    client: WxPayClient, data: bytes, filename: str, meta: bytes | None, field: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await upload(client, data, filename, meta=meta)
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == field


async def test_upload_signature_must_cover_the_meta(client: WxPayClient) -> None:
    meta = media_meta(PNG)
    other = media_meta(PNG, "other.png")
    endpoint = Endpoint(
        name="media", method="POST", host="global_", path="/v3/merchant/media/upload"
    )
    with pytest.raises(SignatureRejectedError):
        await client.send(
            endpoint,
            body=multipart(meta, PNG, "shop.png"),
            sign_body=other,
            content_type="multipart/form-data; boundary=sandboxBoundary42",
        )


async def test_upload_needs_both_parts(client: WxPayClient) -> None:
    meta = media_meta(PNG)
    endpoint = Endpoint(
        name="media", method="POST", host="global_", path="/v3/merchant/media/upload"
    )
    only_meta = (
        b'--B\r\nContent-Disposition: form-data; name="meta"\r\n\r\n' + meta + b"\r\n--B--\r\n"
    )
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            endpoint,
            body=only_meta,
            sign_body=meta,
            content_type="multipart/form-data; boundary=B",
        )
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/file"


@pytest.mark.parametrize(
    "path", ["/v3/certificates", "/v3/global/certificates", "/hk/v3/certificates"]
)
async def test_certificate_lists_decrypt_and_verify(
    sb: Sandbox, client: WxPayClient, path: str
) -> None:
    endpoint = Endpoint(
        name="certs", method="GET", host="mainland", path=path, verify_response=False
    )
    raw = await client.send(endpoint)
    pubkey = sb.identity.pubkey_key.public_key()
    certs = parse_certificate_download(
        raw,
        sb.credentials.apiv3_key,
        extra_keys=lambda serial: pubkey if serial == sb.identity.pubkey_id else None,
    )
    assert [c.serial_no for c in certs] == [sb.identity.current_certificate.serial_no]
    entry = json.loads(raw.body)["data"][0]
    assert entry["encrypt_certificate"]["associated_data"] == "certificate"
    assert len(entry["encrypt_certificate"]["nonce"]) == 12
    assert entry["serial_no"] == entry["serial_no"].upper()
    assert len(entry["serial_no"]) == 40


async def test_algorithm_type_is_checked(client: WxPayClient) -> None:
    endpoint = Endpoint(name="certs", method="GET", host="mainland", path="/v3/certificates")
    with pytest.raises(BadRequestError) as caught:
        await client.send(endpoint, query={"algorithm_type": "DSA"})
    assert caught.value.detail is not None
    assert caught.value.detail["location"] == "query"


async def test_rotation_is_picked_up_through_one_refresh(
    wxpay_sandbox_certificate: Sandbox,
) -> None:
    sb = wxpay_sandbox_certificate
    trust = CertificateTrust(min_refresh_gap=0)
    async with sb.client(trust=trust) as client:
        # Prepared (encrypted) under the first certificate, sent after the rotation.
        body, headers = await client.prepare_json(HK_CREATE, hk_application())
        old = sb.wechatpay_serial
        assert headers["Wechatpay-Serial"] == old
        new = sb.rotate_platform_certificate()
        assert new != old
        assert sb.wechatpay_serial == new
        raw = await client.send(HK_CREATE, body=body, headers=headers, idempotency_key="rot1")
        assert raw.headers["Wechatpay-Serial"] == new
        assert trust.refresh_count == 2
        assert {c.serial_no for c in trust.certificates} == {old, new}
        # New encryptions use the newest certificate, which the sandbox can decrypt too.
        raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="rot2")
        assert json.loads(raw.body)["verification_status"] == "Under Review"
        assert sb.submerchant_count == 2


def _form(*parts: tuple[str, str | None, str | None, bytes]) -> bytes:
    """A multipart body of ``(name, filename, content_type, data)`` parts, in the order given."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        head = f"--B42\r\nContent-Disposition: {disposition}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        body += head.encode() + b"\r\n" + data + b"\r\n"
    return body + b"--B42--\r\n"


_META = media_meta(PNG, "shop.png")


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(
            [("file", "shop.png", "image/png", PNG), ("meta", None, "application/json", _META)],
            id="file-first",
        ),
        pytest.param([("meta", None, None, _META), ("file", "shop.png", None, PNG)], id="no-types"),
        pytest.param(
            [("meta", None, "application/json", _META), ("file", "b.png", "image/png", PNG)],
            id="other-filename",
        ),
        pytest.param(
            [("meta", None, "application/json", _META), ("file", "shop.png", "text/plain", PNG)],
            id="text-file",
        ),
        pytest.param(
            [("meta", None, "application/json", _META), ("file", "shop.png", "image/jpg", PNG)],
            id="png-as-jpg",
        ),
        pytest.param(
            [
                ("meta", None, "application/json", _META),
                ("meta", None, "application/json", _META),
                ("file", "shop.png", "image/png", PNG),
            ],
            id="meta-twice",
        ),
    ],
)
async def test_a_form_not_laid_out_as_spec_b10_is_refused(
    sb: Sandbox, client: WxPayClient, parts: list[tuple[str, str | None, str | None, bytes]]
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            MEDIA,
            body=_form(*parts),
            sign_body=_META,
            content_type="multipart/form-data; boundary=B42",
        )
    assert caught.value.code == "PARAM_ERROR"
    assert not sb.state.media
