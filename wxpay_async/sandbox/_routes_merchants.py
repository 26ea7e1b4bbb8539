"""HK sub-merchant onboarding (spec A4.1-A4.3): create with Idempotency-Key, query, modify."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..crypto import Padding, encrypt_field
from ._core import Core
from ._protocol import ApiFailure, answer, json_bytes
from ._rules import (
    HK_CREATE,
    HK_MODIFY,
    check_media_ids,
    check_person_matches_type,
    check_registration_date,
    check_store_photos,
    decrypt_contact,
)
from ._schema import check, require_json_object
from ._state import APPROVED, UNDER_REVIEW, IdempotencyRecord, SubMerchant

__all__ = ["approve_submerchant", "routes"]

_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9]{1,64}")
_STORED_FIELDS = (
    "sp_appid",
    "name",
    "shortname",
    "office_phone",
    "merchant_country_code",
    "business_category",
    "merchant_type",
    "registration_certificate_number",
    "registration_certificate_date",
    "registration_certificate_copy",
    "settlement_bank_number",
    "channel_id",
    "business",
    "director",
    "principal",
)
_QUERY_BUSINESS = (
    "business_type",
    "app_download",
    "website",
    "office_account",
    "mini_program",
    "store_address",
    "mcc",
)


async def _validated(core: Core, request: web.Request, spec: Any) -> dict[str, Any]:
    document = require_json_object(await request.read(), request.content_type)
    check(spec, document)
    check_registration_date(document)
    check_store_photos(document)
    check_person_matches_type(document)
    if document["sp_mchid"] != core.mchid:
        raise ApiFailure.invalid(
            f"sp_mchid {document['sp_mchid']} is not the calling institution ({core.mchid})"
        )
    if core.options.strict_media:
        check_media_ids(core.state, document)
    return document


def approve_submerchant(core: Core, sub_mchid: str) -> None:
    """Finish the (simulated) manual verification of a sub-merchant."""
    sub = core.state.submerchants.get(sub_mchid)
    if sub is None:
        raise KeyError(f"no sub-merchant {sub_mchid}")
    sub.verification_status = APPROVED


def routes(core: Core) -> list[web.RouteDef]:
    state = core.state

    def _replay(key: str, digest: str) -> web.Response | None:
        previous = state.idempotency.get(key)
        if previous is None:
            return None
        if previous.body_digest != digest:
            raise ApiFailure.invalid(
                f"Idempotency-Key {key} was already used with a different request body"
            )
        return web.Response(
            status=previous.status, body=previous.answer, content_type="application/json"
        )

    async def create(request: web.Request) -> web.Response:
        """POST /hk/v3/merchants: the same Idempotency-Key and body bytes replay the answer."""
        key = request.headers.get("Idempotency-Key")
        if not key:
            raise ApiFailure.param("Idempotency-Key", "is required by this API", location="header")
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiFailure.param(
                "Idempotency-Key", "must be 1-64 letters and digits", value=key, location="header"
            )
        digest = IdempotencyRecord.digest(await request.read())
        if (replay := _replay(key, digest)) is not None:
            return replay
        document = await _validated(core, request, HK_CREATE)
        contact = decrypt_contact(
            core.identity,
            request.headers.get("Wechatpay-Serial"),
            document["contact"],
            core.padding_order,
            key_mode=core.options.key_mode,
        )
        # Checked again just before committing: nothing between here and the commit awaits,
        # so two concurrent requests with one key can never both create.
        if (replay := _replay(key, digest)) is not None:
            return replay
        sub = SubMerchant(
            sub_mchid=state.new_sub_mchid(),
            data={k: document[k] for k in _STORED_FIELDS if k in document},
            contact=contact,
            verification_status=UNDER_REVIEW,
            idempotency_key=key,
        )
        state.submerchants[sub.sub_mchid] = sub
        state.created_by_key[key] += 1
        body_out = json_bytes(
            {
                "sub_mchid": sub.sub_mchid,
                "verification_status": sub.verification_status,
                "description": sub.description(),
            }
        )
        state.idempotency[key] = IdempotencyRecord(
            key=key, body_digest=digest, status=200, answer=body_out
        )
        delay = core.options.submerchant_review_seconds
        if delay is not None:
            core.later(delay, lambda: approve_submerchant(core, sub.sub_mchid))
        return web.Response(body=body_out, content_type="application/json")

    async def modify(request: web.Request) -> web.Response:
        """PUT /hk/v3/merchants: replace the stored information (contact optional)."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiFailure.param(
                "Idempotency-Key", "must be 1-64 letters and digits", value=key, location="header"
            )
        document = await _validated(core, request, HK_MODIFY)
        sub = state.submerchants.get(document["sub_mchid"])
        if sub is None:
            raise ApiFailure.not_found(f"sub_mchid {document['sub_mchid']} does not exist")
        contact = None
        if document.get("contact") is not None:
            contact = decrypt_contact(
                core.identity,
                request.headers.get("Wechatpay-Serial"),
                document["contact"],
                core.padding_order,
                key_mode=core.options.key_mode,
            )
        sub.data = {k: document[k] for k in _STORED_FIELDS if k in document}
        if contact is not None:
            sub.contact = contact
        return answer({"sub_mchid": sub.sub_mchid})

    async def query(request: web.Request) -> web.Response:
        """GET /hk/v3/merchants/{sub_mchid}?sp_appid=&sp_mchid= (contact encrypted to us)."""
        sub_mchid = request.match_info["sub_mchid"]
        if len(sub_mchid) > 32:
            raise ApiFailure.param("sub_mchid", "at most 32 characters", location="url")
        for name in ("sp_appid", "sp_mchid"):
            value = request.query.get(name)
            if not value:
                raise ApiFailure.param(name, "缺少必填参数 (required)", location="query")
            if len(value) > 32:
                raise ApiFailure.param(name, "at most 32 characters", location="query")
        sub = state.submerchants.get(sub_mchid)
        if sub is None:
            raise ApiFailure.not_found(f"sub_mchid {sub_mchid} does not exist")
        if request.query["sp_mchid"] != core.mchid or request.query["sp_appid"] != sub.data.get(
            "sp_appid"
        ):
            raise ApiFailure.invalid("The parent-child relationship is invalid.")
        return answer(_query_document(core, sub))

    return [
        web.post("/hk/v3/merchants", create),
        web.put("/hk/v3/merchants", modify),
        web.get("/hk/v3/merchants/{sub_mchid}", query),
    ]


def _query_document(core: Core, sub: SubMerchant) -> dict[str, Any]:
    data = sub.data
    document: dict[str, Any] = {"sub_mchid": sub.sub_mchid}
    for name in ("name", "shortname", "office_phone", "merchant_country_code", "business_category"):
        document[name] = data[name]
    public_key = core.identity.merchant_public_key
    contact = {}
    for name, value in sub.contact.items():
        # Encrypted to the merchant's own key; OAEP, the v3 default (§B7).
        try:
            contact[name] = encrypt_field(public_key, value, Padding.OAEP)
        except ValueError:  # longer than OAEP-SHA1 allows for RSA-2048
            contact[name] = encrypt_field(public_key, value, Padding.PKCS1V15)
    document["contact"] = contact
    for name in (
        "merchant_type",
        "registration_certificate_number",
        "registration_certificate_date",
        "settlement_bank_number",
    ):
        if name in data:
            document[name] = data[name]
    business = data.get("business") or {}
    document["business"] = {k: business[k] for k in _QUERY_BUSINESS if k in business}
    for name in ("director", "principal"):
        if name in data:
            document[name] = data[name]
    return document
