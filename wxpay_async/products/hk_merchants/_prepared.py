"""A create request fixed once, so it can be journaled and re-sent byte for byte."""

from __future__ import annotations

from typing import Any

import attrs

from ..._endpoint import check_idempotency_key
from ..._errors import ValidationError

__all__ = ["PreparedCreate"]


def _check_body(_inst: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bytes) or not value:
        raise ValidationError("body", "must be the non-empty JSON body bytes")


def _check_serial(_inst: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("wechatpay_serial", "must be the encrypting key's serial")


def _check_key(_inst: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    check_idempotency_key(value)


@attrs.frozen(kw_only=True, repr=False)
class PreparedCreate:
    """A validated, encrypted, serialized ``POST /hk/v3/merchants`` request, not yet sent.

    Store all three fields (e.g. in a journal) before sending; after a crash, rebuild it with
    ``PreparedCreate(idempotency_key=..., body=..., wechatpay_serial=...)`` and pass it to
    ``send_prepared`` again: WeChat sees the same key and the same bytes, so a sub-merchant it
    already created is not created twice. The contact fields inside ``body`` are encrypted to
    the platform key named by ``wechatpay_serial``: an entry kept past that key's retirement
    can no longer be decrypted by WeChat, and re-preparing it changes the bytes (RSA padding
    is randomized), which WeChat refuses under the same key. Resume journals promptly.
    """

    idempotency_key: str = attrs.field(validator=_check_key)
    body: bytes = attrs.field(validator=_check_body)
    wechatpay_serial: str = attrs.field(validator=_check_serial)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers this preparation fixes (the signature is added per attempt)."""
        return {"Idempotency-Key": self.idempotency_key, "Wechatpay-Serial": self.wechatpay_serial}

    def __repr__(self) -> str:
        # The body holds merchant details; the repr shows only its size.
        return (
            f"PreparedCreate(idempotency_key={self.idempotency_key!r}, "
            f"body=<{len(self.body)} bytes>, wechatpay_serial={self.wechatpay_serial!r})"
        )
