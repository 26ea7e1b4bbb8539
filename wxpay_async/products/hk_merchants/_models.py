"""Request and response models of the HK sub-merchant onboarding API (spec §A4.1-§A4.3)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from typing import Any, NewType

import attrs

from ..._converter import converter
from ..._errors import ValidationError
from ..._validation import check_text, text, utf8_at_most
from .._common import identifier, instance_of, media_id, member_of, positive_int, require

__all__ = [
    "Business",
    "BusinessInfo",
    "BusinessType",
    "Contact",
    "ContactInfo",
    "CreateAnswer",
    "MerchantType",
    "Person",
    "PersonInfo",
    "StorePhotos",
    "SubMerchant",
    "SubMerchantApplication",
    "SubMerchantCreated",
    "SubMerchantModification",
    "SubMerchantModified",
    "VerificationStatus",
]


class MerchantType(enum.StrEnum):
    """``ENTERPRISE``, or ``INDIVIDUAL`` for a natural person or sole proprietor."""

    ENTERPRISE = "ENTERPRISE"
    INDIVIDUAL = "INDIVIDUAL"


class BusinessType(enum.StrEnum):
    """Where the sub-merchant sells."""

    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    BOTH = "BOTH"


class VerificationStatus(enum.StrEnum):
    """The create answer's review state; WeChat spells these with a space."""

    UNDER_REVIEW = "Under Review"
    APPROVED = "Approved"


# -- request models ------------------------------------------------------------------------------

_EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
#: Digits with optional spaces or dashes and an optional leading + (country prefix).
_PHONE = r"\+?[0-9][0-9 -]*"
_PHONE_RULE = "must be a phone number (digits, spaces or dashes, optional leading +)"
_DATE_WORDS = frozenset({"PERMANENT", "N/A"})
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


_email = text(1, None, pattern=_EMAIL, describe="must be an email address")
_phone = text(1, None, pattern=_PHONE, describe=_PHONE_RULE)


@attrs.frozen(kw_only=True)
class Contact:
    """The contact person; every field is encrypted with the platform key before sending.

    Limits are on the UTF-8 plaintext. ``repr()`` hides the values.
    """

    name: str = attrs.field(repr=False, validator=utf8_at_most(64))
    phone: str = attrs.field(repr=False, validator=[utf8_at_most(32), _phone])
    email: str = attrs.field(repr=False, validator=[utf8_at_most(256), _email])


#: ``business.store_photos`` for ``/hk/v3``: a *string* holding a JSON array of media IDs
#: (``'["id1","id2"]'``). Callers may pass the list; it is encoded once, compactly.
StorePhotos = NewType("StorePhotos", str)


def _store_photos(value: Any) -> Any:
    """Encode a list of media IDs as the JSON-array string the /hk/v3 API expects."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
    return value  # the validator names the field and the rule


def _check_store_photos(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    rule = "must be a list of media IDs (1-128 characters each) or its JSON-array string"
    if not isinstance(value, str):
        raise ValidationError(attribute.name, rule)
    try:
        items = json.loads(value)
    except (ValueError, RecursionError):
        raise ValidationError(attribute.name, rule) from None
    if not isinstance(items, list) or not items:
        raise ValidationError(attribute.name, rule)
    for i, item in enumerate(items):
        # Text rules as for every other field: BMP only (§B1), valid Unicode.
        check_text(f"{attribute.name}[{i}]", item, max_len=128)


def _structure_store_photos(value: Any, _type: Any) -> StorePhotos:
    if not isinstance(value, (str, list, tuple)):
        raise ValidationError("", "must be a list of media IDs or its JSON-array string")
    return StorePhotos(_store_photos(value))


converter.register_structure_hook(StorePhotos, _structure_store_photos)


@attrs.frozen(kw_only=True)
class Business:
    """How and where the sub-merchant does business.

    Lengths of these subfields are not published; only emptiness and the character set are
    checked. ``store_photos`` accepts a list of media IDs or the JSON-array string.
    """

    business_type: BusinessType = attrs.field(validator=member_of(BusinessType))
    app_download: str | None = attrs.field(default=None, validator=text())
    website: str | None = attrs.field(default=None, validator=text())
    office_account: str | None = attrs.field(default=None, validator=text())
    mini_program: str | None = attrs.field(default=None, validator=text())
    store_address: str | None = attrs.field(default=None, validator=text())
    store_photos: StorePhotos | None = attrs.field(
        default=None, converter=_store_photos, validator=_check_store_photos
    )
    mcc: str | None = attrs.field(
        default=None, validator=text(1, 4, pattern=r"\d{4}", describe="must be 4 digits")
    )


@attrs.frozen(kw_only=True)
class Person:
    """A director (ENTERPRISE) or principal (INDIVIDUAL)."""

    name: str | None = attrs.field(default=None, validator=text())
    number: str | None = attrs.field(default=None, validator=text())


def _registration_date(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or (isinstance(value, str) and value in _DATE_WORDS):
        return
    rule = "must be YYYY-MM-DD, PERMANENT or N/A"
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValidationError(attribute.name, rule)
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError(attribute.name, f"{rule} (not a calendar date)") from None


@attrs.frozen(kw_only=True)
class _MerchantBody:
    """Fields shared by the create (POST) and modify (PUT) bodies."""

    sp_appid: str = attrs.field(validator=identifier())
    sp_mchid: str = attrs.field(validator=identifier())
    name: str = attrs.field(validator=text(1, 128))
    shortname: str = attrs.field(validator=text(1, 64))
    office_phone: str = attrs.field(validator=text(1, 32, pattern=_PHONE, describe=_PHONE_RULE))
    business_category: int = attrs.field(validator=positive_int)
    merchant_country_code: str = attrs.field(
        validator=text(1, 3, pattern=r"\d{3}", describe="must be a 3-digit numeric code (344)")
    )
    merchant_type: MerchantType = attrs.field(validator=member_of(MerchantType))
    business: Business = attrs.field(validator=instance_of(Business))
    contact: Contact | None = attrs.field(default=None, validator=instance_of(Contact))
    channel_id: str | None = attrs.field(default=None, validator=text(1, 20))
    registration_certificate_number: str | None = attrs.field(default=None, validator=text(1, 50))
    registration_certificate_date: str | None = attrs.field(
        default=None, validator=_registration_date
    )
    registration_certificate_copy: str | None = attrs.field(default=None, validator=media_id())
    settlement_bank_number: str | None = attrs.field(default=None, validator=text(1, 128))
    director: Person | None = attrs.field(default=None, validator=instance_of(Person))
    principal: Person | None = attrs.field(default=None, validator=instance_of(Person))

    def __attrs_post_init__(self) -> None:
        # The seed: director "only when the Merchant Type is ENTERPRISE", principal only for
        # INDIVIDUAL. Sending the wrong one is a PARAM_ERROR round trip we can spare.
        if self.director is not None:
            require(
                self.merchant_type == MerchantType.ENTERPRISE,
                "director",
                "is only for ENTERPRISE merchants (use principal for INDIVIDUAL)",
            )
        if self.principal is not None:
            require(
                self.merchant_type == MerchantType.INDIVIDUAL,
                "principal",
                "is only for INDIVIDUAL merchants (use director for ENTERPRISE)",
            )


@attrs.frozen(kw_only=True)
class SubMerchantApplication(_MerchantBody):
    """The body of ``POST /hk/v3/merchants``: contact and registration details are required."""

    contact: Contact = attrs.field(validator=instance_of(Contact))
    registration_certificate_number: str = attrs.field(validator=text(1, 50))
    registration_certificate_date: str = attrs.field(validator=_registration_date)


@attrs.frozen(kw_only=True)
class SubMerchantModification(_MerchantBody):
    """The body of ``PUT /hk/v3/merchants``: the application plus ``sub_mchid``.

    ``contact`` is optional, but when given all three of its fields are required (and
    encrypted).
    """

    sub_mchid: str = attrs.field(validator=identifier())


# -- response models -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateAnswer:
    """The create answer exactly as WeChat sends it."""

    sub_mchid: str
    verification_status: VerificationStatus | str | None = None
    description: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SubMerchantCreated:
    """The create answer, plus the ``idempotency_key`` that was sent (persist it).

    ``verification_status`` is "Under Review" until WeChat approves the sub-merchant; it
    cannot transact before that.
    """

    sub_mchid: str
    #: Not on the wire: the Idempotency-Key this library sent (the caller's or a generated one).
    idempotency_key: str
    verification_status: VerificationStatus | str | None = None
    description: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SubMerchantModified:
    """The modify answer."""

    sub_mchid: str
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ContactInfo:
    """A decrypted contact; ``repr()`` hides the values."""

    name: str | None = attrs.field(default=None, repr=False)
    phone: str | None = attrs.field(default=None, repr=False)
    email: str | None = attrs.field(default=None, repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class BusinessInfo:
    """``business`` as WeChat returns it."""

    business_type: BusinessType | str | None = None
    app_download: str | None = None
    website: str | None = None
    office_account: str | None = None
    mini_program: str | None = None
    store_address: str | None = None
    #: The JSON-array string of media IDs; an array in the answer is encoded the same way.
    store_photos: StorePhotos | None = None
    mcc: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PersonInfo:
    """``director`` / ``principal`` as WeChat returns them."""

    name: str | None = None
    number: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SubMerchant:
    """``GET /hk/v3/merchants/{sub_mchid}``: the sub-merchant, contact decrypted."""

    sub_mchid: str
    name: str | None = None
    shortname: str | None = None
    office_phone: str | None = None
    merchant_country_code: str | None = None
    business_category: int | None = None
    merchant_type: MerchantType | str | None = None
    contact: ContactInfo | None = None
    registration_certificate_number: str | None = None
    registration_certificate_date: str | None = None
    registration_certificate_copy: str | None = None
    settlement_bank_number: str | None = None
    channel_id: str | None = None
    business: BusinessInfo | None = None
    director: PersonInfo | None = None
    principal: PersonInfo | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)
