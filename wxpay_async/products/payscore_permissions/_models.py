"""Models of the PayScore acquiring-institution authorization API (spec §A3)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import attrs

from ..._converter import CompactTime
from ..._errors import ValidationError
from ..._validation import Validator, https_url, text
from .._common import identifier

__all__ = [
    "AUTHORIZATION_CODE_PATTERN",
    "TOKEN_TTL",
    "AuthorizationState",
    "PayScoreAuthorization",
    "PermissionApplication",
    "PermissionNotification",
    "PermissionsToken",
    "TerminateRequest",
    "UserServiceStatus",
]

#: Digits, letters and ``_ - | *``; unique per merchant (spec §A3.1).
AUTHORIZATION_CODE_PATTERN = r"[0-9A-Za-z_\-|*]{1,32}"
#: How long an ``apply_permissions_token`` can launch the authorization mini program.
TOKEN_TTL = dt.timedelta(hours=1)


def authorization_code() -> Validator:
    """The ``authorization_code`` rule (also applied to the path parameter)."""
    return text(
        1,
        32,
        pattern=AUTHORIZATION_CODE_PATTERN,
        describe="must be 1-32 letters, digits or _-|*",
    )


class AuthorizationState(enum.StrEnum):
    """Whether the user has authorized the service."""

    UNAVAILABLE = "UNAVAILABLE"  # not authorized
    AVAILABLE = "AVAILABLE"  # authorized
    UNBINDUSER = "UNBINDUSER"  # no user bound yet


class UserServiceStatus(enum.StrEnum):
    """What a PayScore open/close notification reports."""

    USER_OPEN_SERVICE = "USER_OPEN_SERVICE"
    USER_CLOSE_SERVICE = "USER_CLOSE_SERVICE"


@attrs.frozen(kw_only=True)
class PermissionApplication:
    """Body of ``POST /v3/payscore/acquiringbank/permissions`` (pre-authorization)."""

    service_id: str = attrs.field(validator=identifier())
    channel_id: str = attrs.field(validator=identifier())
    appid: str = attrs.field(validator=identifier())
    sub_mchid: str = attrs.field(validator=identifier())
    authorization_code: str = attrs.field(validator=authorization_code())
    sub_appid: str | None = attrs.field(default=None, validator=identifier())
    #: Receives PAYSCORE.USER_OPEN_SERVICE / USER_CLOSE_SERVICE; must be https, no query.
    notify_url: str | None = attrs.field(default=None, validator=https_url(255))


def _aware_datetime(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Compared with an aware "now": a naive datetime or a string would fail only later, as a
    # TypeError inside the launch builders.
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        raise ValidationError(attribute.name, "must be a timezone-aware datetime")


@attrs.frozen(kw_only=True)
class PermissionsToken:
    """The pre-authorization answer.

    ``expires_at`` is computed by this library: the moment the answer was received plus
    :data:`TOKEN_TTL` (one hour, per the PayScore docs). WeChat does not send it, so a slow
    network makes it slightly optimistic.
    """

    apply_permissions_token: str = attrs.field(repr=False)
    expires_at: dt.datetime = attrs.field(validator=_aware_datetime)
    extra: dict[str, Any] = attrs.field(factory=dict)

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Whether the token can no longer launch the authorization mini program."""
        return (now or dt.datetime.now(dt.UTC)) >= self.expires_at


@attrs.frozen(kw_only=True)
class _TokenAnswer:
    apply_permissions_token: str
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PayScoreAuthorization:
    """``GET .../permissions/authorization-code/{authorization_code}``."""

    authorization_code: str
    authorization_state: AuthorizationState | str
    service_id: str | None = None
    appid: str | None = None
    mchid: str | None = None
    sub_mchid: str | None = None
    sub_appid: str | None = None
    channel_id: str | None = None
    #: The user's identifiers: out of ``repr()`` (logs), as in the notification's model.
    openid: str | None = attrs.field(default=None, repr=False)
    sub_openid: str | None = attrs.field(default=None, repr=False)
    notify_url: str | None = None
    cancel_authorization_time: dt.datetime | None = None
    authorization_success_time: dt.datetime | None = None
    #: ``A`` > ``B`` > ``C``; only after a successful authorization, and not always.
    user_label: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TerminateRequest:
    """Body of ``POST .../authorization-code/{authorization_code}/terminate``."""

    service_id: str = attrs.field(validator=identifier())
    sub_mchid: str = attrs.field(validator=identifier())
    reason: str = attrs.field(validator=text(1, 50))
    channel_id: str | None = attrs.field(default=None, validator=identifier())


@attrs.frozen(kw_only=True)
class PermissionNotification:
    """Decrypted resource of PAYSCORE.USER_OPEN_SERVICE / USER_CLOSE_SERVICE notifications.

    The field table says ``mchid``/``sub_mchid`` while the samples send ``mch_id``/``sub_mch_id``:
    either spelling fills :attr:`mchid` / :attr:`sub_mchid`. Exactly one of ``openid`` and
    ``sub_openid`` is present. ``openorclose_time`` is ``yyyyMMddHHmmss`` Beijing time.
    The user's ``openid``/``sub_openid`` and the unknown keys in ``extra`` are decrypted
    contents and stay out of ``repr()`` (logs); read them as attributes.
    """

    authorization_code: str | None = None
    user_service_status: UserServiceStatus | str | None = None
    openorclose_time: CompactTime | None = None
    mchid: str | None = None
    sub_mchid: str | None = None
    appid: str | None = None
    sub_appid: str | None = None
    channel_id: str | None = None
    service_id: str | None = None
    openid: str | None = attrs.field(default=None, repr=False)
    sub_openid: str | None = attrs.field(default=None, repr=False)
    mch_id: str | None = attrs.field(default=None, repr=False)
    sub_mch_id: str | None = attrs.field(default=None, repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        # Frozen model: fill the canonical names once, at construction.
        if self.mchid is None and self.mch_id is not None:
            object.__setattr__(self, "mchid", self.mch_id)
        if self.sub_mchid is None and self.sub_mch_id is not None:
            object.__setattr__(self, "sub_mchid", self.sub_mch_id)
