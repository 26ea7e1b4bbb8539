"""Models of the WeChat Pay Global H5 (web) payment permission API (spec §A2)."""

from __future__ import annotations

import enum
import re
from typing import Any

import attrs

from ..._errors import ValidationError
from ..._validation import Validator, https_url, text
from .._common import identifier, list_of_text, media_id, media_ids, member_of, require

__all__ = [
    "ApplymentState",
    "ApplymentType",
    "AuthorizationState",
    "H5Application",
    "H5ApplicationChanges",
    "H5ApplicationNotification",
    "H5ApplicationRequest",
    "H5AuthorizationStatus",
    "H5DomainApplication",
    "H5DomainApplicationChanges",
    "H5DomainApplicationRequest",
    "TransactionLimitType",
    "WebsiteState",
]


class TransactionLimitType(enum.StrEnum):
    """The H5 payment limit asked for (default ``NORMAL_LIMIT``)."""

    UN_LAUNCHED_WEBSITE_LIMIT = "UN_LAUNCHED_WEBSITE_LIMIT"  # test limit, unlaunched site
    NORMAL_LIMIT = "NORMAL_LIMIT"
    NO_LIMIT = "NO_LIMIT"


class WebsiteState(enum.StrEnum):
    """Whether the sub-merchant's website is live (default ``HAS_LAUNCHED``)."""

    HAS_LAUNCHED = "HAS_LAUNCHED"
    UN_LAUNCHED = "UN_LAUNCHED"


class ApplymentType(enum.StrEnum):
    """Authorization, or removal of the limit of an existing authorization."""

    APPLY_FOR_PAYMENT_AUTHORITY = "APPLY_FOR_PAYMENT_AUTHORITY"
    APPLY_FOR_RELIEVE_LIMITED = "APPLY_FOR_RELIEVE_LIMITED"


class ApplymentState(enum.StrEnum):
    """Review state of an application; only ``REJECTED`` ones can be modified."""

    PENDING = "PENDING"
    UNDER_REVIEW = "UNDER_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class AuthorizationState(enum.StrEnum):
    """A sub-merchant's H5 authorization (five documented values; others are kept as text)."""

    AUTHORITY_TO_TEST = "AUTHORITY_TO_TEST"  # ultra-low (test) limit
    FORMAL_AUTHORITY = "FORMAL_AUTHORITY"  # ordinary limit
    AUTHORIZED = "AUTHORIZED"  # no limit
    UNDER_PUNISHMENT = "UNDER_PUNISHMENT"
    UNAUTHORIZED = "UNAUTHORIZED"


#: A bare host name (``qq.com``, ``pay.example.co.uk``), optionally ``*.``-prefixed: H5
#: payment domains are names, not URLs.
_DOMAIN = re.compile(
    r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"
)
_WEBSITE = r"https?://\S+"


_domain_list = list_of_text(1, max_len=128)
# Enum fields check their type too: a model built directly skips the converter's enum hook.
_limit_type = member_of(TransactionLimitType)
_website_state = member_of(WebsiteState)
_applyment_type = member_of(ApplymentType)


def _domains(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # The count limit is unpublished for this API (the onboarding variant allows 5): only
    # non-emptiness is enforced.
    _domain_list(inst, attribute, value)
    for i, item in enumerate(value or ()):
        if not _DOMAIN.fullmatch(item):
            raise ValidationError(
                f"{attribute.name}[{i}]", "must be a bare domain name such as qq.com (no scheme)"
            )


def _website() -> Validator:
    return text(1, 128, pattern=_WEBSITE, describe="must be an http(s) URL")


def _require_screenshots(
    website_state: WebsiteState | None,
    homepage_pics: list[str] | None,
    business_page_pics: list[str] | None,
) -> None:
    if website_state == WebsiteState.UN_LAUNCHED:
        require(
            bool(homepage_pics),
            "website_homepage_pics",
            "is required when website_state is UN_LAUNCHED",
        )
        require(
            bool(business_page_pics),
            "website_business_page_pics",
            "is required when website_state is UN_LAUNCHED",
        )


def _website_rules(form: H5ApplicationRequest | H5ApplicationChanges, *, partial: bool) -> None:
    """The conditional rules of the error table that a client can check (spec §A2.1)."""
    website_state, transaction_limit_type = form.website_state, form.transaction_limit_type
    if transaction_limit_type == TransactionLimitType.NO_LIMIT:
        require(
            form.business_description is not None,
            "business_description",
            "is required when transaction_limit_type is NO_LIMIT",
        )
        require(
            form.company_register_cert is not None,
            "company_register_cert",
            "is required when transaction_limit_type is NO_LIMIT",
        )
    _require_screenshots(website_state, form.website_homepage_pics, form.website_business_page_pics)
    # An unlaunched site may only ask for the test limit; on a create an absent type means
    # NORMAL_LIMIT, on a change it means "unchanged".
    if website_state == WebsiteState.UN_LAUNCHED and (
        transaction_limit_type is not None or not partial
    ):
        require(
            transaction_limit_type == TransactionLimitType.UN_LAUNCHED_WEBSITE_LIMIT,
            "transaction_limit_type",
            "must be UN_LAUNCHED_WEBSITE_LIMIT for an UN_LAUNCHED website",
        )


@attrs.frozen(kw_only=True)
class H5ApplicationRequest:
    """Body of ``POST /v3/global/merchant/h5/permission/applications``."""

    sub_mchid: str = attrs.field(validator=identifier())
    domains: list[str] = attrs.field(validator=_domains)
    website_url: str = attrs.field(validator=_website())
    transaction_limit_type: TransactionLimitType | None = attrs.field(
        default=None, validator=_limit_type
    )
    business_description: str | None = attrs.field(default=None, validator=text(1, 500))
    company_register_cert: str | None = attrs.field(default=None, validator=media_id())
    website_state: WebsiteState | None = attrs.field(default=None, validator=_website_state)
    website_homepage_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    website_business_page_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    notify_url: str | None = attrs.field(default=None, validator=https_url(128))
    applyment_type: ApplymentType | None = attrs.field(default=None, validator=_applyment_type)

    def __attrs_post_init__(self) -> None:
        _website_rules(self, partial=False)
        if self.applyment_type == ApplymentType.APPLY_FOR_RELIEVE_LIMITED:
            require(
                self.transaction_limit_type == TransactionLimitType.NO_LIMIT,
                "transaction_limit_type",
                "must be NO_LIMIT for APPLY_FOR_RELIEVE_LIMITED",
            )
            require(
                self.website_state != WebsiteState.UN_LAUNCHED,
                "website_state",
                "must be HAS_LAUNCHED for APPLY_FOR_RELIEVE_LIMITED",
            )


@attrs.frozen(kw_only=True)
class H5ApplicationChanges:
    """Body of ``PATCH .../applications/{applyment_id}`` (only a REJECTED application).

    ``transaction_limit_type`` is optional here: one official page marks it required, the
    OpenAPI description does not list it (spec §A2.3).
    """

    domains: list[str] = attrs.field(validator=_domains)
    website_url: str | None = attrs.field(default=None, validator=_website())
    transaction_limit_type: TransactionLimitType | None = attrs.field(
        default=None, validator=_limit_type
    )
    business_description: str | None = attrs.field(default=None, validator=text(1, 500))
    company_register_cert: str | None = attrs.field(default=None, validator=media_id())
    website_state: WebsiteState | None = attrs.field(default=None, validator=_website_state)
    website_homepage_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    website_business_page_pics: list[str] | None = attrs.field(default=None, validator=media_ids())

    def __attrs_post_init__(self) -> None:
        _website_rules(self, partial=True)


@attrs.frozen(kw_only=True)
class _ApplicationFields:
    """The H5Application object's fields, everything but ``applyment_id`` optional."""

    applyment_id: int
    applyment_state: ApplymentState | str | None = None
    applyment_type: ApplymentType | str | None = None
    sub_mchid: str | None = None
    domains: list[str] | None = None
    website_url: str | None = None
    website_state: WebsiteState | str | None = None
    transaction_limit_type: TransactionLimitType | str | None = None
    business_description: str | None = None
    company_register_cert: str | None = None
    website_homepage_pics: list[str] | None = None
    website_business_page_pics: list[str] | None = None
    notify_url: str | None = None
    audit_reject_detail: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class H5Application(_ApplicationFields):
    """An H5 permission application as WeChat returns it (create, get, modify)."""

    applyment_state: ApplymentState | str


@attrs.frozen(kw_only=True)
class H5ApplicationNotification(_ApplicationFields):
    """The decrypted resource of an ``APPLYMENT_STATE.*`` review notification.

    Its fields are unpublished ("the review result and the request information"): it is read
    as the H5Application object with everything but ``applyment_id`` optional and unknown keys
    kept, so an authentic notification is never refused for its shape. Re-query
    ``get_application(applyment_id)`` for the authoritative state. Those unknown keys
    (``extra``) are decrypted contents of unknown sensitivity: they stay out of ``repr()``.
    """

    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class H5AuthorizationStatus:
    """``GET /v3/global/merchant/h5/permission/{sub_mchid}``."""

    sub_mchid: str
    authorization_state: AuthorizationState | str
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class H5DomainApplicationRequest:
    """Body of ``POST /v3/global/merchant/h5/permission/domain/applications``.

    ``out_applyment_id`` is the merchant's own unique number; its length is unpublished
    (1-64 accepted here). ``sub_mchid`` is optional: without it the institution applies for
    its own domains (OpenAPI: "为自身和子商户发起").
    """

    sub_mchid: str | None = attrs.field(default=None, validator=identifier())
    domains: list[str] = attrs.field(validator=_domains)
    website_url: str = attrs.field(validator=_website())
    out_applyment_id: str = attrs.field(validator=text(1, 64))
    website_state: WebsiteState | None = attrs.field(default=None, validator=_website_state)
    website_homepage_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    website_business_page_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    notify_url: str | None = attrs.field(default=None, validator=https_url(128))

    def __attrs_post_init__(self) -> None:
        _require_screenshots(
            self.website_state, self.website_homepage_pics, self.website_business_page_pics
        )


@attrs.frozen(kw_only=True)
class H5DomainApplicationChanges:
    """Body of ``PATCH .../domain/applications/{applyment_id}`` (only a REJECTED one)."""

    domains: list[str] = attrs.field(validator=_domains)
    website_url: str | None = attrs.field(default=None, validator=_website())
    website_state: WebsiteState | None = attrs.field(default=None, validator=_website_state)
    website_homepage_pics: list[str] | None = attrs.field(default=None, validator=media_ids())
    website_business_page_pics: list[str] | None = attrs.field(default=None, validator=media_ids())

    def __attrs_post_init__(self) -> None:
        _require_screenshots(
            self.website_state, self.website_homepage_pics, self.website_business_page_pics
        )


@attrs.frozen(kw_only=True)
class H5DomainApplication:
    """A domain-change application as WeChat returns it.

    The published answer spells the site ``webiste_url``; either spelling fills
    ``website_url`` (the other stays available as ``webiste_url``).
    """

    applyment_id: int
    applyment_state: ApplymentState | str | None = None
    out_applyment_id: str | None = None
    sub_mchid: str | None = None
    domains: list[str] | None = None
    website_url: str | None = None
    webiste_url: str | None = attrs.field(default=None, repr=False)
    website_state: WebsiteState | str | None = None
    website_homepage_pics: list[str] | None = None
    website_business_page_pics: list[str] | None = None
    notify_url: str | None = None
    audit_reject_detail: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.website_url is None and self.webiste_url is not None:
            object.__setattr__(self, "website_url", self.webiste_url)
