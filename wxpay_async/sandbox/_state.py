"""What the sandbox remembers, so reads reflect writes: one record type per object."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import secrets
from collections import Counter
from typing import Any

import attrs

from ._clock import compact, rfc3339

__all__ = [
    "APPROVED",
    "UNDER_REVIEW",
    "CloudBaseMerchant",
    "H5Application",
    "IdempotencyRecord",
    "MediaFile",
    "PayScoreAuthorization",
    "SandboxState",
    "SubMerchant",
]

UNDER_REVIEW = "Under Review"
APPROVED = "Approved"


@attrs.define(kw_only=True)
class SubMerchant:
    """An onboarded HK sub-merchant. ``contact`` holds decrypted values and is never shown."""

    sub_mchid: str
    data: dict[str, Any] = attrs.field(repr=False)
    contact: dict[str, str] = attrs.field(repr=False)
    verification_status: str = UNDER_REVIEW
    idempotency_key: str | None = None

    def description(self) -> str:
        if self.verification_status == APPROVED:
            return "The sub-merchant has been approved and can transact."
        return (
            "This merchant takes effect only after being approved. Please check the "
            "verification status on WeChat Pay Merchant Platform."
        )


@attrs.define(kw_only=True)
class H5Application:
    """An H5 permission application (``kind="h5"``) or a domain application (``"domain"``)."""

    applyment_id: int
    sub_mchid: str
    kind: str
    fields: dict[str, Any]
    applyment_state: str = "PENDING"
    audit_reject_detail: str | None = None
    out_applyment_id: str | None = None
    #: Counts submissions (create, then each PATCH after a rejection): review timers belong to
    #: one submission and do nothing once the application was resubmitted.
    submission: int = 0

    @property
    def notify_url(self) -> str | None:
        url = self.fields.get("notify_url")
        return url if isinstance(url, str) else None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"applyment_id": self.applyment_id}
        if self.out_applyment_id is not None:
            document["out_applyment_id"] = self.out_applyment_id
        document["sub_mchid"] = self.sub_mchid
        document["applyment_state"] = self.applyment_state
        document.update(self.fields)
        if self.audit_reject_detail:
            document["audit_reject_detail"] = self.audit_reject_detail
        return document


@attrs.define(kw_only=True)
class PayScoreAuthorization:
    """A PayScore pre-authorization, from token to user acceptance to termination."""

    authorization_code: str
    request: dict[str, Any]
    token: str = attrs.field(repr=False)
    token_expires: float
    authorization_state: str = "UNBINDUSER"
    openid: str | None = None
    authorization_success_time: dt.datetime | None = None
    cancel_authorization_time: dt.datetime | None = None
    user_label: str | None = None

    @property
    def notify_url(self) -> str | None:
        url = self.request.get("notify_url")
        return url if isinstance(url, str) else None

    def to_json(self, mchid: str) -> dict[str, Any]:
        r = self.request
        document: dict[str, Any] = {
            "service_id": r["service_id"],
            "appid": r["appid"],
            "mchid": mchid,
            "authorization_code": self.authorization_code,
            "authorization_state": self.authorization_state,
            "sub_mchid": r["sub_mchid"],
            "channel_id": r["channel_id"],
        }
        if r.get("sub_appid"):
            document["sub_appid"] = r["sub_appid"]
        if self.openid is not None:
            document["sub_openid" if r.get("sub_appid") else "openid"] = self.openid
        if r.get("notify_url"):
            document["notify_url"] = r["notify_url"]
        if self.authorization_success_time is not None:
            document["authorization_success_time"] = rfc3339(self.authorization_success_time)
        if self.cancel_authorization_time is not None:
            document["cancel_authorization_time"] = rfc3339(self.cancel_authorization_time)
        if self.user_label is not None:
            document["user_label"] = self.user_label
        return document

    def notification_resource(self, mchid: str, status: str, when: dt.datetime) -> dict[str, Any]:
        """The decrypted resource of A3.4, spelled ``mch_id``/``sub_mch_id`` as the samples are."""
        r = self.request
        resource: dict[str, Any] = {"appid": r["appid"], "mch_id": mchid}
        if r.get("sub_appid"):
            resource["sub_appid"] = r["sub_appid"]
        resource["sub_mch_id"] = r["sub_mchid"]
        resource["channel_id"] = r["channel_id"]
        resource["service_id"] = r["service_id"]
        if self.openid is not None:
            resource["sub_openid" if r.get("sub_appid") else "openid"] = self.openid
        resource["user_service_status"] = status
        resource["openorclose_time"] = compact(when)
        resource["authorization_code"] = self.authorization_code
        return resource


@attrs.frozen(kw_only=True)
class MediaFile:
    media_id: str
    filename: str
    sha256: str
    size: int


@attrs.frozen(kw_only=True)
class IdempotencyRecord:
    """The first successful answer under an Idempotency-Key, replayed for identical retries."""

    key: str
    body_digest: str
    status: int
    answer: bytes = attrs.field(repr=False)

    @staticmethod
    def digest(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()


@attrs.define(kw_only=True)
class CloudBaseMerchant:
    """A merchant number linked to the mini program through ``/tcb/wxpayopenauth``.

    State values are the sandbox's convention (the real numeric values are unconfirmed):
    0 not requested, 1 waiting for the merchant's confirmation, 2 authorized.
    """

    merchant_code: str
    mch_relation_state: int = 0
    jsapi_auth_state: int = 0
    refund_auth_state: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "merchant_code": self.merchant_code,
            "merchant_name": f"Sandbox merchant {self.merchant_code}",
            "company_name": f"Sandbox company {self.merchant_code}",
            "mch_relation_state": self.mch_relation_state,
            "jsapi_auth_state": self.jsapi_auth_state,
            "refund_auth_state": self.refund_auth_state,
        }


@attrs.define(kw_only=True)
class SandboxState:
    """Everything the sandbox has accepted; inspect it from tests as ``sb.state``."""

    submerchants: dict[str, SubMerchant] = attrs.Factory(dict)
    h5_applications: dict[int, H5Application] = attrs.Factory(dict)
    payscore: dict[str, PayScoreAuthorization] = attrs.Factory(dict)
    media: dict[str, MediaFile] = attrs.Factory(dict)
    idempotency: dict[str, IdempotencyRecord] = attrs.Factory(dict)
    cloudbase: dict[str, CloudBaseMerchant] = attrs.Factory(dict)
    #: H5 payment authorization_state per sub-merchant (absent: UNAUTHORIZED).
    h5_authorization: dict[str, str] = attrs.Factory(dict)
    #: How many sub-merchants each Idempotency-Key created (should never exceed 1).
    created_by_key: Counter[str] = attrs.Factory(Counter)
    _sub_ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1001), repr=False)
    _applyment_ids: itertools.count[int] = attrs.field(
        factory=lambda: itertools.count(2000000001), repr=False
    )

    def new_sub_mchid(self) -> str:
        return f"19{next(self._sub_ids):08d}"

    def new_applyment_id(self) -> int:
        return next(self._applyment_ids)

    @staticmethod
    def new_media_id() -> str:
        # Real media IDs are long opaque strings (often more than 32 characters).
        return "V1_" + secrets.token_urlsafe(60)

    @staticmethod
    def new_permissions_token() -> str:
        return "AUTHTOKEN_" + secrets.token_urlsafe(96)
