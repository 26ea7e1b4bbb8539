"""Hong Kong sub-merchant onboarding (``/hk/v3/merchants`` on the mainland host, spec §A4.1-§A4.3).

Typical use::

    result = await hk_merchants.create_submerchant(client, application)
    save(result.sub_mchid, result.idempotency_key)

``create_submerchant`` fixes the ``Idempotency-Key``, encrypts the contact once and serializes
once, so every automatic retry sends the same key and byte-identical body and WeChat creates
at most one sub-merchant. To survive a *process* crash as well, split the call:
:func:`prepare_create` returns a :class:`PreparedCreate` (the exact body bytes, the key and the
``Wechatpay-Serial``) to journal before sending; :func:`send_prepared` sends it, now or after a
restart.

Padding: the seed specifies RSAES-PKCS1-v1_5 for the contact fields; whether this endpoint also
accepts OAEP is unconfirmed (spec §B7). ``REQUEST_PADDING`` is the module-wide default, and every
call takes ``padding=`` to override it. Answers' contact fields are decrypted with
``RESPONSE_PADDING`` (OAEP, the v3 rule), falling back to PKCS#1 v1.5 (which a value longer
than OAEP's 214 bytes needs), unless ``padding=`` names the one padding to use.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import attrs
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ..._client import WxPayClient
from ..._converter import structure, unstructure
from ..._endpoint import Endpoint, check_idempotency_key, new_idempotency_key
from ..._errors import DecryptionError, ValidationError
from ...crypto import Padding, decrypt_field
from .._common import answer_document, identifier, structure_answer
from ._models import (
    Business,
    BusinessInfo,
    BusinessType,
    Contact,
    ContactInfo,
    CreateAnswer,
    MerchantType,
    Person,
    PersonInfo,
    StorePhotos,
    SubMerchant,
    SubMerchantApplication,
    SubMerchantCreated,
    SubMerchantModification,
    SubMerchantModified,
    VerificationStatus,
)
from ._prepared import PreparedCreate

__all__ = [
    "CREATE",
    "GET",
    "MODIFY",
    "REQUEST_PADDING",
    "RESPONSE_PADDING",
    "STORE_PHOTOS_AS",
    "Business",
    "BusinessInfo",
    "BusinessType",
    "Contact",
    "ContactInfo",
    "MerchantType",
    "Person",
    "PersonInfo",
    "PreparedCreate",
    "StorePhotos",
    "SubMerchant",
    "SubMerchantApplication",
    "SubMerchantCreated",
    "SubMerchantModification",
    "SubMerchantModified",
    "VerificationStatus",
    "create_submerchant",
    "get_submerchant",
    "modify_submerchant",
    "prepare_create",
    "send_prepared",
]

#: Padding for the encrypted contact fields of create/modify (the seed says PKCS#1 v1.5).
REQUEST_PADDING: Padding = Padding.PKCS1V15
#: Padding of the contact fields WeChat returns, decrypted with the merchant private key.
RESPONSE_PADDING: Padding = Padding.OAEP
#: How ``business.store_photos`` goes on the wire: ``"string"``, a JSON-array string
#: (``'["id1","id2"]'``, what the /hk/v3 description specifies), or ``"array"``, a JSON array
#: (how the SDKs model the /v3/global variant). Which one /hk/v3 requires is unconfirmed
#: (spec §A4.1); every create and modify call also takes ``store_photos_as=``.
STORE_PHOTOS_AS: Literal["string", "array"] = "string"

_CONTACT_FIELDS = ("contact.name", "contact.phone", "contact.email")

CREATE = Endpoint(
    name="hk_merchants.create",
    method="POST",
    host="mainland",
    path="/hk/v3/merchants",
    idempotency_key=True,  # same key + same body on every retry: one sub-merchant at most
    encrypted_fields=_CONTACT_FIELDS,
    padding=Padding.PKCS1V15,
)
MODIFY = Endpoint(
    name="hk_merchants.modify",
    method="PUT",
    host="mainland",
    path="/hk/v3/merchants",
    encrypted_fields=_CONTACT_FIELDS,
    padding=Padding.PKCS1V15,
)
GET = Endpoint(
    name="hk_merchants.get",
    method="GET",
    host="mainland",
    path="/hk/v3/merchants/{sub_mchid}",
)


@attrs.frozen(kw_only=True)
class _GetQuery:
    sub_mchid: str = attrs.field(validator=identifier())
    sp_appid: str = attrs.field(validator=identifier())
    sp_mchid: str = attrs.field(validator=identifier())


def _padding(padding: Padding | str | None, default: Padding) -> Padding:
    if padding is None:
        return default
    try:
        return Padding(padding)
    except ValueError:
        raise ValidationError("padding", "must be Padding.OAEP or Padding.PKCS1V15") from None


def _padded(endpoint: Endpoint, padding: Padding | None) -> Endpoint:
    chosen = _padding(padding, REQUEST_PADDING)
    return endpoint if chosen is endpoint.padding else attrs.evolve(endpoint, padding=chosen)


def _payload(model: SubMerchantApplication | SubMerchantModification, form: str | None) -> Any:
    """The model to send, or its document with ``store_photos`` as a JSON array."""
    chosen = STORE_PHOTOS_AS if form is None else form
    if chosen not in ("string", "array"):
        raise ValidationError("store_photos_as", "must be 'string' or 'array'")
    photos = model.business.store_photos
    if chosen == "string" or photos is None:
        return model
    document = unstructure(model)
    document["business"]["store_photos"] = json.loads(photos)
    return document


async def prepare_create(
    client: WxPayClient,
    application: SubMerchantApplication | dict[str, Any],
    *,
    idempotency_key: str | None = None,
    padding: Padding | None = None,
    store_photos_as: Literal["string", "array"] | None = None,
) -> PreparedCreate:
    """Validate, encrypt and serialize a create request once, without sending it.

    Raises ``ValidationError`` (field path and rule) for bad input or a bad key; nothing is
    sent. Journal the result before :func:`send_prepared` to make a crash-resumed job re-send
    exactly what WeChat may already have seen. ``store_photos_as``: see :data:`STORE_PHOTOS_AS`.
    """
    key = (
        new_idempotency_key() if idempotency_key is None else check_idempotency_key(idempotency_key)
    )
    model = structure(application, SubMerchantApplication)
    payload = _payload(model, store_photos_as)
    body, headers = await client.prepare_json(_padded(CREATE, padding), payload)
    return PreparedCreate(
        idempotency_key=key, body=body, wechatpay_serial=headers["Wechatpay-Serial"]
    )


async def send_prepared(client: WxPayClient, prepared: PreparedCreate) -> SubMerchantCreated:
    """Send a :class:`PreparedCreate` (same key, same bytes) and return the created sub-merchant.

    Errors: ``ServerError`` SYSTEM_ERROR (already retried with the same key and body; send the
    same prepared request again later), ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST
    ("please add merchant by page", "business_code already exists": query, do not resend).
    Doc: https://pay.weixin.qq.com/wiki/doc/api/wxpay/ch/Onborading_Sub_Merchant/chapter3_1.shtml
    """
    raw = await client.send(
        CREATE,
        body=prepared.body,
        headers={"Wechatpay-Serial": prepared.wechatpay_serial},
        idempotency_key=prepared.idempotency_key,
    )
    answer = structure_answer(answer_document(raw), CreateAnswer, raw)
    return SubMerchantCreated(
        sub_mchid=answer.sub_mchid,
        idempotency_key=prepared.idempotency_key,
        verification_status=answer.verification_status,
        description=answer.description,
        extra=answer.extra,
    )


async def create_submerchant(
    client: WxPayClient,
    application: SubMerchantApplication | dict[str, Any],
    *,
    idempotency_key: str | None = None,
    padding: Padding | None = None,
    store_photos_as: Literal["string", "array"] | None = None,
) -> SubMerchantCreated:
    """Onboard a HK sub-merchant (``POST /hk/v3/merchants``); the result carries the key used.

    Errors: ``ValidationError`` before sending; ``ServerError`` SYSTEM_ERROR (retried with the same
    Idempotency-Key and body); ``BadRequestError`` PARAM_ERROR, INVALID_REQUEST ("please add
    merchant by page", "business_code already exists").
    Doc: https://pay.weixin.qq.com/wiki/doc/api/wxpay/ch/Onborading_Sub_Merchant/chapter3_1.shtml
    """
    prepared = await prepare_create(
        client,
        application,
        idempotency_key=idempotency_key,
        padding=padding,
        store_photos_as=store_photos_as,
    )
    return await send_prepared(client, prepared)


async def modify_submerchant(
    client: WxPayClient,
    application: SubMerchantModification | dict[str, Any],
    *,
    padding: Padding | None = None,
    idempotency_key: str | None = None,
    store_photos_as: Literal["string", "array"] | None = None,
) -> SubMerchantModified:
    """Modify a HK sub-merchant (``PUT /hk/v3/merchants``); contact, if given, is re-encrypted.

    ``idempotency_key`` is sent as the ``Idempotency-Key`` header when given (the PUT does not
    list one; whether WeChat uses it is unconfirmed, spec §A4.3). ``store_photos_as``: see
    :data:`STORE_PHOTOS_AS`.
    Errors: ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST, ``ServerError`` SYSTEM_ERROR.
    Doc: https://pay.weixin.qq.com/wiki/doc/api/wxpay/ch/Onborading_Sub_Merchant/chapter3_3.shtml
    """
    if idempotency_key is not None:
        idempotency_key = check_idempotency_key(idempotency_key)
    model = structure(application, SubMerchantModification)
    return await client.call(
        _padded(MODIFY, padding),
        SubMerchantModified,
        payload=_payload(model, store_photos_as),
        idempotency_key=idempotency_key,
    )


async def get_submerchant(
    client: WxPayClient,
    sub_mchid: str,
    *,
    sp_appid: str,
    sp_mchid: str,
    padding: Padding | None = None,
) -> SubMerchant:
    """Query a HK sub-merchant (``GET /hk/v3/merchants/{sub_mchid}``), contact decrypted.

    The contact is decrypted with the merchant private key (``RESPONSE_PADDING``, then PKCS#1
    v1.5; only ``padding=`` if given); a field that does not decrypt raises ``DecryptionError``
    naming it.
    Errors: ``NotFoundError``, ``BadRequestError`` INVALID_REQUEST, ``ServerError`` SYSTEM_ERROR.
    Doc: https://pay.weixin.qq.com/wiki/doc/api/wxpay/ch/Onborading_Sub_Merchant/chapter3_2.shtml
    """
    query = structure(
        {"sub_mchid": sub_mchid, "sp_appid": sp_appid, "sp_mchid": sp_mchid}, _GetQuery
    )
    chosen = None if padding is None else _padding(padding, RESPONSE_PADDING)  # before sending
    raw = await client.send(
        GET,
        path_params={"sub_mchid": query.sub_mchid},
        query={"sp_appid": query.sp_appid, "sp_mchid": query.sp_mchid},
    )
    document = answer_document(raw)
    contact = document.get("contact")
    if isinstance(contact, dict):
        if chosen is not None:
            kinds: tuple[Padding, ...] = (chosen,)
        elif RESPONSE_PADDING is Padding.OAEP:
            # OAEP's padding check is exact, so trying it first never misreads a PKCS#1
            # ciphertext; the reverse is not true (PKCS#1 may "decrypt" OAEP data to noise).
            kinds = (Padding.OAEP, Padding.PKCS1V15)
        else:
            kinds = (RESPONSE_PADDING,)
        key = client.credentials.private_key
        document["contact"] = {
            name: _decrypt(key, value, kinds, f"contact.{name}")
            if name in ("name", "phone", "email") and isinstance(value, str)
            else value
            for name, value in contact.items()
        }
    return structure_answer(document, SubMerchant, raw)


def _decrypt(key: RSAPrivateKey, value: str, kinds: tuple[Padding, ...], field: str) -> str:
    for kind in kinds:
        try:
            return decrypt_field(key, value, kind)
        except DecryptionError:
            continue
    tried = " or ".join(kinds)
    raise DecryptionError(f"{field} could not be decrypted with {tried} padding")
