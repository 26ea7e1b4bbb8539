"""Request-body rules of every endpoint, restated from spec.md Part A."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .._errors import DecryptionError
from .._validation import is_printable_text
from ..crypto import Padding, decrypt_field
from ._identity import Identity
from ._protocol import ApiFailure
from ._schema import Arr, Int, Spec, Str, check, obj, pointer
from ._state import SandboxState

__all__ = [
    "DOMAIN_CREATE",
    "DOMAIN_PATCH",
    "H5_CREATE",
    "H5_PATCH",
    "HK_CREATE",
    "HK_MODIFY",
    "PAYSCORE_APPLY",
    "PAYSCORE_TERMINATE",
    "check_h5_conditions",
    "check_https_url",
    "check_media_ids",
    "check_registration_date",
    "check_relation",
    "check_store_photos",
    "decrypt_contact",
]

_B64 = r"[A-Za-z0-9+/]+={0,2}"
# Sensitive: a client that forgot to encrypt sent plaintext, which an error must not echo.
_CIPHER = Str(
    1024,
    pattern=_B64,
    describe="must be the Base64 RSA ciphertext of the value",
    sensitive=True,
)
_DOMAIN = r"(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{1,62}"
_MEDIA = Str(128)
_MEDIA_LIST = Arr(_MEDIA)
_ID32 = Str(32)

_CONTACT = obj({"name": _CIPHER, "phone": _CIPHER, "email": _CIPHER})
# The lengths of business.*, director.* and principal.* are unconfirmed (spec A4.1): refusing
# a value over a guessed limit could reject what WeChat accepts, so only type, emptiness and
# the BMP rule apply to them.
_FREE = Str()
_BUSINESS = obj(
    {"business_type": Str(choices=("ONLINE", "OFFLINE", "BOTH"))},
    {
        "app_download": _FREE,
        "website": _FREE,
        "office_account": _FREE,
        "mini_program": _FREE,
        "store_address": _FREE,
        "mcc": Str(4, pattern=r"[0-9]{4}", describe="must be a 4-digit MCC"),
    },
)
_PERSON = obj({}, {"name": _FREE, "number": _FREE})
_HK_COMMON_REQUIRED: dict[str, Spec] = {
    "sp_appid": _ID32,
    "sp_mchid": _ID32,
    "name": Str(128),
    "shortname": Str(64),
    "office_phone": Str(
        32,
        pattern=r"\+?[0-9][0-9 -]{3,31}",
        describe="must be a phone number with country prefix (digits, spaces or dashes)",
    ),
    "business_category": Int(minimum=1),
    "merchant_country_code": Str(3, pattern=r"[0-9]{1,3}", describe="must be a numeric code"),
    "merchant_type": Str(choices=("ENTERPRISE", "INDIVIDUAL")),
    "business": _BUSINESS,
}
_HK_OPTIONAL: dict[str, Spec] = {
    "channel_id": Str(20),
    "registration_certificate_copy": _MEDIA,
    "settlement_bank_number": Str(128),
    "director": _PERSON,
    "principal": _PERSON,
}
_REG_NUMBER = Str(50)
_REG_DATE = Str(
    10,
    pattern=r"[0-9]{4}-[0-9]{2}-[0-9]{2}|PERMANENT|N/A",
    describe="must be YYYY-MM-DD, PERMANENT or N/A",
)

HK_CREATE = obj(
    {
        **_HK_COMMON_REQUIRED,
        "contact": _CONTACT,
        "registration_certificate_number": _REG_NUMBER,
        "registration_certificate_date": _REG_DATE,
    },
    _HK_OPTIONAL,
)
HK_MODIFY = obj(
    {**_HK_COMMON_REQUIRED, "sub_mchid": _ID32},
    {
        **_HK_OPTIONAL,
        "contact": _CONTACT,
        "registration_certificate_number": _REG_NUMBER,
        "registration_certificate_date": _REG_DATE,
    },
)

_LIMIT = Str(choices=("UN_LAUNCHED_WEBSITE_LIMIT", "NORMAL_LIMIT", "NO_LIMIT"))
_WEBSITE_STATE = Str(choices=("HAS_LAUNCHED", "UN_LAUNCHED"))
_DOMAINS = Arr(Str(128, pattern=_DOMAIN, describe="must be a bare domain name such as qq.com"))
_WEBSITE = Str(128, pattern=r"https?://\S+", describe="must be an http(s) URL")
_H5_SCREENSHOTS: dict[str, Spec] = {
    "website_homepage_pics": _MEDIA_LIST,
    "website_business_page_pics": _MEDIA_LIST,
}

H5_CREATE = obj(
    {"sub_mchid": _ID32, "domains": _DOMAINS, "website_url": _WEBSITE},
    {
        "transaction_limit_type": _LIMIT,
        "business_description": Str(500),
        "company_register_cert": _MEDIA,
        "website_state": _WEBSITE_STATE,
        **_H5_SCREENSHOTS,
        "notify_url": Str(128),
        "applyment_type": Str(choices=("APPLY_FOR_PAYMENT_AUTHORITY", "APPLY_FOR_RELIEVE_LIMITED")),
    },
)
H5_PATCH = obj(
    {"domains": _DOMAINS},
    {
        "business_description": Str(500),
        "company_register_cert": _MEDIA,
        **_H5_SCREENSHOTS,
        "website_state": _WEBSITE_STATE,
        "website_url": _WEBSITE,
        "transaction_limit_type": _LIMIT,
    },
)
DOMAIN_CREATE = obj(
    {"sub_mchid": _ID32, "domains": _DOMAINS, "website_url": _WEBSITE, "out_applyment_id": Str(64)},
    {"website_state": _WEBSITE_STATE, **_H5_SCREENSHOTS, "notify_url": Str(128)},
)
DOMAIN_PATCH = obj(
    {"domains": _DOMAINS},
    {"website_url": _WEBSITE, "website_state": _WEBSITE_STATE, **_H5_SCREENSHOTS},
)

AUTHORIZATION_CODE = Str(
    32,
    pattern=r"[0-9A-Za-z_\-|*]+",
    describe="may contain only digits, letters and _ - | *",
)
PAYSCORE_APPLY = obj(
    {
        "service_id": _ID32,
        "channel_id": _ID32,
        "appid": _ID32,
        "sub_mchid": _ID32,
        "authorization_code": AUTHORIZATION_CODE,
    },
    {"sub_appid": _ID32, "notify_url": Str(255)},
)
PAYSCORE_TERMINATE = obj(
    {"service_id": _ID32, "sub_mchid": _ID32, "reason": Str(50)},
    {"channel_id": _ID32},
)

# Plaintext limits of the encrypted contact fields (spec A4.1) and a sanity rule for each.
_CONTACT_PLAINTEXT: dict[str, tuple[int, str | None, str]] = {
    "name": (64, None, "name"),
    "phone": (32, r"\+?[0-9][0-9 -]{3,31}", "must be a phone number (digits, optional +)"),
    "email": (256, r"[^@\s]+@[^@\s]+\.[^@\s]+", "must be an e-mail address"),
}


def check_https_url(document: Mapping[str, Any], name: str) -> None:
    """``notify_url`` rules: absolute https, no query string (WeChat cannot call http)."""
    value = document.get(name)
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ApiFailure.param(pointer(name), "必须为https地址 (must be https)", value=value)
    if parts.query or parts.fragment:
        raise ApiFailure.param(pointer(name), "不能携带参数 (no query string)", value=value)


def check_registration_date(document: Mapping[str, Any]) -> None:
    value = document.get("registration_certificate_date")
    if value is None or value in ("PERMANENT", "N/A"):
        return
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ApiFailure.param(
            pointer("registration_certificate_date"), "is not a calendar date", value=value
        ) from None


_PHOTOS_RULE = "must be a JSON array of media IDs, as a string"


def check_store_photos(document: Mapping[str, Any]) -> None:
    """``business.store_photos``: a JSON-array-like string of media IDs (or an array)."""
    business = document.get("business")
    photos = business.get("store_photos") if isinstance(business, dict) else None
    if photos is None:
        return
    where = pointer("business", "store_photos")
    if isinstance(photos, list):
        check(Arr(_MEDIA), photos)
        return
    if not isinstance(photos, str):
        raise ApiFailure.param(where, _PHOTOS_RULE)
    try:
        parsed = json.loads(photos)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list) or not all(isinstance(p, str) and p for p in parsed):
        raise ApiFailure.param(where, _PHOTOS_RULE, value=photos)


def check_person_matches_type(document: Mapping[str, Any]) -> None:
    """``director`` is for ENTERPRISE, ``principal`` for INDIVIDUAL merchants only."""
    kind = document.get("merchant_type")
    if kind == "INDIVIDUAL" and document.get("director") is not None:
        raise ApiFailure.param(pointer("director"), "only for merchant_type ENTERPRISE")
    if kind == "ENTERPRISE" and document.get("principal") is not None:
        raise ApiFailure.param(pointer("principal"), "only for merchant_type INDIVIDUAL")


def media_ids(document: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Every media ID a body references, with its JSON pointer."""
    for name in ("registration_certificate_copy", "company_register_cert"):
        value = document.get(name)
        if isinstance(value, str):
            yield pointer(name), value
    for name in ("website_homepage_pics", "website_business_page_pics"):
        for i, value in enumerate(document.get(name) or ()):
            if isinstance(value, str):
                yield pointer(name, i), value
    business = document.get("business")
    photos = business.get("store_photos") if isinstance(business, dict) else None
    if isinstance(photos, str):
        try:
            photos = json.loads(photos)
        except ValueError:
            photos = None
    if isinstance(photos, list):
        for value in photos:
            if isinstance(value, str):
                yield pointer("business", "store_photos"), value


def check_media_ids(state: SandboxState, document: Mapping[str, Any]) -> None:
    for where, media_id in media_ids(document):
        if media_id not in state.media:
            raise ApiFailure.param(
                where, "media_id无效 (not issued by the media upload API)", value=media_id
            )


def check_h5_conditions(fields: Mapping[str, Any]) -> None:
    """The conditional rules of A2.1, in the order WeChat's error table lists them."""
    limit = fields.get("transaction_limit_type", "NORMAL_LIMIT")
    state = fields.get("website_state", "HAS_LAUNCHED")
    kind = fields.get("applyment_type", "APPLY_FOR_PAYMENT_AUTHORITY")
    if kind == "APPLY_FOR_RELIEVE_LIMITED":
        if limit != "NO_LIMIT":
            raise ApiFailure.param(
                pointer("transaction_limit_type"),
                "must be NO_LIMIT when applyment_type is APPLY_FOR_RELIEVE_LIMITED",
                value=limit,
            )
        if state != "HAS_LAUNCHED":
            raise ApiFailure.param(
                pointer("website_state"),
                "only a HAS_LAUNCHED website can apply to remove the limit",
                value=state,
            )
    if state == "UN_LAUNCHED":
        for name in ("website_homepage_pics", "website_business_page_pics"):
            if not fields.get(name):
                raise ApiFailure.param(
                    pointer(name), "is required when website_state is UN_LAUNCHED"
                )
    if limit == "NO_LIMIT":
        for name in ("business_description", "company_register_cert"):
            if not fields.get(name):
                raise ApiFailure.param(
                    pointer(name), "is required when transaction_limit_type is NO_LIMIT"
                )
    if state == "UN_LAUNCHED" and limit != "UN_LAUNCHED_WEBSITE_LIMIT":
        raise ApiFailure.invalid(
            "The website has not launched. You can request only a test limit "
            "(transaction_limit_type UN_LAUNCHED_WEBSITE_LIMIT)."
        )


def decrypt_contact(
    identity: Identity,
    serial: str | None,
    contact: Mapping[str, Any],
    order: list[Padding] | None = None,
    *,
    key_mode: str = "public_key",
) -> dict[str, str]:
    """Decrypt ``contact.*`` with the key ``Wechatpay-Serial`` names (OAEP or PKCS#1 v1.5).

    The key must be the merchant's mode's (spec B6: one request must not mix modes): the WeChat
    Pay public key in ``public_key`` mode, a platform certificate in ``certificate`` mode. The
    fields must share one padding: the first field's decides.

    ``order`` is the padding to try first, updated in place with what worked: a client uses one
    padding per endpoint, so each decryption usually succeeds at once (RSA private operations
    are most of the sandbox's CPU per onboarding). OpenSSL answers a bad PKCS#1 v1.5 block with
    random bytes (implicit rejection) rather than an error, so a PKCS#1 result must also be
    printable text; OAEP's own check is exact. A client that alternates paddings could, rarely
    (well under 1% per field), have OAEP data read as PKCS#1 noise: use one padding.
    """
    if not serial:
        raise ApiFailure.param(
            "Wechatpay-Serial",
            "is required when the body carries encrypted fields",
            location="header",
        )
    key = identity.decryption_key(serial)
    if key is None:
        raise ApiFailure.param(
            "Wechatpay-Serial",
            "names no current WeChat Pay public key or platform certificate",
            value=serial,
            location="header",
        )
    if (serial == identity.pubkey_id) != (key_mode == "public_key"):
        raise ApiFailure.param(
            "Wechatpay-Serial",
            "public-key mode: encrypt with the WeChat Pay public key (PUB_KEY_ID_...), not a "
            "platform certificate"
            if key_mode == "public_key"
            else "certificate mode: this merchant has no WeChat Pay public key; encrypt with "
            "a platform certificate",
            value=serial,
            location="header",
        )
    if order is None:
        order = [Padding.OAEP, Padding.PKCS1V15]
    chosen: Padding | None = None
    plain: dict[str, str] = {}
    for name, (limit, pattern, describe) in _CONTACT_PLAINTEXT.items():
        where = pointer("contact", name)
        value: str | None = None
        for padding in order if chosen is None else (chosen,):
            try:
                candidate = decrypt_field(key, contact[name], padding)
            except DecryptionError:
                continue
            if candidate and is_printable_text(candidate):
                value = candidate
                if padding is not order[0]:
                    order.reverse()  # the other fields were encrypted the same way
                chosen = padding
                break
        if value is None:
            raise ApiFailure.param(
                where,
                "解密失败: cannot be decrypted with the key named by Wechatpay-Serial "
                + (
                    "(RSA OAEP or PKCS#1 v1.5)"
                    if chosen is None
                    else f"with the padding of the other contact fields ({chosen})"
                ),
            )
        if len(value) > limit:
            raise ApiFailure.param(where, f"plaintext must be at most {limit} characters")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise ApiFailure.param(where, describe)
        plain[name] = value
    return plain


PARENT_CHILD_INVALID = (
    "The parent-child relationship is invalid. Check if the sub-merchant belongs to the "
    "service provider."
)


def check_relation(state: SandboxState, sub_mchid: str) -> None:
    """The sub-merchant must belong to the calling institution (onboarded here, or seeded)."""
    if sub_mchid not in state.submerchants:
        raise ApiFailure.invalid(PARENT_CHILD_INVALID)
