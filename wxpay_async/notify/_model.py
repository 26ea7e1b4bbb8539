"""The verified, decrypted notification handed to merchant code (spec §B8)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

__all__ = ["Notification"]


@attrs.frozen(kw_only=True)
class Notification:
    """One verified and decrypted WeChat Pay notification.

    ``resource`` is the event's typed model when ``event_type`` is registered (see
    :meth:`NotificationVerifier.register`), otherwise the decrypted JSON object as a ``dict``.
    It is left out of ``repr()``: decrypted contents may carry personal data.
    """

    #: notification ID (string[1,36]); the de-duplication key for inboxes
    id: str
    create_time: dt.datetime
    #: e.g. ``PAYSCORE.USER_OPEN_SERVICE``, ``APPLYMENT_STATE.APPROVED``
    event_type: str
    #: ``encrypt-resource`` in every documented notification
    resource_type: str
    #: human-readable text such as ``授权成功``; optional on the wire
    summary: str | None = None
    resource: Any = attrs.field(default=None, repr=False)
    #: ``resource.original_type`` (e.g. ``payscore``), when present
    original_type: str | None = None
    #: the ``Request-ID`` header, for support tickets
    request_id: str | None = None
    #: the ``Wechatpay-Serial`` whose key verified the signature
    serial: str | None = None
