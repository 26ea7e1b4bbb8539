"""Answering WeChat Pay: the framework-neutral core and the aiohttp handler (spec §B8).

Status codes, all failures with ``{"code": "FAIL", "message": ...}`` (message ≤ 64 characters,
fixed per failure kind: no secret and no decrypted value can reach WeChat or a log through it):

=====  ==========================================================================
204    handled now, or an already-handled duplicate
400    verified but undecryptable or malformed (``DecryptionError``, ``MalformedNotificationError``)
401    signature refused: missing headers, bad signature, ``WECHATPAY/SIGNTEST/`` probe,
       timestamp outside the window, unknown ``Wechatpay-Serial``
500    the merchant's handler raised, or outlived the inbox's ``handler_timeout`` and was
       cancelled; its claim was released, WeChat's retry runs it again. Also: an
       unexpected error while verifying (a bug, logged at ERROR with its stack), and a
       handler that returned a non-awaitable (recorded as done; the retry is a duplicate)
503    another delivery of the same ID is still in flight, or the trust/inbox store failed;
       WeChat retries later
=====  ==========================================================================

WeChat treats every non-2xx the same way (it retries on its schedule); the split is for the
merchant's logs and metrics.

The caller's own mistakes are not answered but raised, as ``ValidationError`` naming the
argument: a ``str`` body (it must be the raw bytes), headers that are neither a mapping nor
``(name, value)`` pairs, a verifier without ``async parse``, an inbox without ``async
process``, and a handler that is not an async callable (``async def`` function, bound async
method, ``functools.partial`` of one, or an object with ``async def __call__``; a plain
``def`` is refused because by the time its ``None`` failed to be awaited its side effect would
have run, and every redelivery would run it again).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .._errors import (
    DecryptionError,
    MalformedNotificationError,
    SignatureProbeError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    UnknownSerialError,
    ValidationError,
    WxPayError,
)
from ._checks import check_handler, is_async_callable
from ._headers import HeadersLike, as_header_mapping, text_of
from ._inbox import (
    HandlerNotAwaitableError,
    HandlerTimeoutError,
    Inbox,
    MemoryInbox,
    Outcome,
    awaitable,
)
from ._model import Notification
from ._verifier import NotificationVerifier

__all__ = ["NotificationHandler", "aiohttp_handler", "failure_body", "handle_notification"]

log = logging.getLogger("wxpay_async.notify")

NotificationHandler = Callable[[Notification], Awaitable[Any]]

# Most specific first: the probe and window errors are SignatureVerificationErrors too.
_REFUSALS: tuple[tuple[type[WxPayError], int, str], ...] = (
    (SignatureProbeError, 401, "signature probe refused"),
    (TimestampOutOfWindowError, 401, "timestamp outside the accepted window"),
    (UnknownSerialError, 401, "unknown Wechatpay-Serial"),
    (SignatureVerificationError, 401, "signature verification failed"),
    (DecryptionError, 400, "resource decryption failed"),
    (MalformedNotificationError, 400, "malformed notification"),
)


def failure_body(message: str) -> bytes:
    """``{"code":"FAIL","message":...}`` with the message cut to WeChat's 64 characters."""
    return json.dumps({"code": "FAIL", "message": message[:64]}, ensure_ascii=False).encode()


def _request_id(headers: Mapping[Any, Any]) -> str | None:
    for key, value in headers.items():
        if isinstance(key, (str, bytes)) and text_of(key).lower() == "request-id":
            return text_of(value) if isinstance(value, (str, bytes)) else str(value)
    return None


def _check_collaborators(verifier: object, handler: object, inbox: object) -> None:
    if not is_async_callable(getattr(verifier, "parse", None)):
        raise ValidationError(
            "verifier", "must be a NotificationVerifier (an object with async parse)"
        )
    check_handler(handler)
    if not is_async_callable(getattr(inbox, "process", None)):
        raise ValidationError(
            "inbox", "must be an Inbox (MemoryInbox, SqliteInbox, RedisInbox) or None"
        )


def _stack(exc: BaseException) -> str:
    # Where it failed, without the message: an unexpected error's text may quote decrypted
    # data (a resource model's own exception, say), which must not reach the logs.
    return "".join(traceback.format_tb(exc.__traceback__)).rstrip()


async def handle_notification(
    verifier: NotificationVerifier,
    handler: NotificationHandler,
    headers: HeadersLike,
    body: bytes,
    *,
    inbox: Inbox,
) -> tuple[int, bytes]:
    """Verify, de-duplicate and handle one delivery; returns ``(status, body)`` to answer.

    For any framework: pass the request headers (any mapping, or ASGI pairs) and the raw
    body bytes. A non-empty answer body is ``application/json``. See the module docstring
    for the status codes (204 success or duplicate; 400/401 refused; 500 handler failed or
    unexpected error; 503 in flight elsewhere or store/trust outage). Raises
    :class:`ValidationError` instead of answering when the arguments are wrong (a ``str``
    body, unusable headers, a handler that is not async, ...).
    Doc: https://pay.weixin.qq.com/wiki/doc/api_external/en/apis/chapter4_4_8.shtml
    """
    _check_collaborators(verifier, handler, inbox)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ValidationError("body", "must be the raw request body bytes, not decoded text")
    return await _handle(verifier, handler, as_header_mapping(headers), body, inbox)


async def _handle(
    verifier: NotificationVerifier,
    handler: NotificationHandler,
    headers: Mapping[Any, Any],
    body: bytes,
    inbox: Inbox,
) -> tuple[int, bytes]:
    try:
        notification = await verifier.parse(headers, body)
    except (SignatureVerificationError, DecryptionError, MalformedNotificationError) as exc:
        request_id = _request_id(headers)
        for kind, status, message in _REFUSALS:
            if isinstance(exc, kind):
                # Probes are expected traffic, not an incident.
                level = logging.INFO if isinstance(exc, SignatureProbeError) else logging.WARNING
                log.log(
                    level,
                    "notification refused (%s: %s) Request-ID=%s",
                    type(exc).__name__,
                    getattr(exc, "reason", exc),  # without the Request-ID suffix
                    request_id,
                )
                return status, failure_body(message)
        raise  # pragma: no cover - _REFUSALS covers the three families caught above
    except WxPayError as exc:  # e.g. the certificate refresh could not reach WeChat Pay
        log.warning(
            "notification not verified now (%s: %s) Request-ID=%s",
            type(exc).__name__,
            exc,
            _request_id(headers),
        )
        return 503, failure_body("verification temporarily unavailable")
    except Exception as exc:  # a bug (ours, the trust's, a resource model's): answer, log
        log.error(
            "notification not verified: unexpected %s Request-ID=%s\n%s",
            type(exc).__name__,
            _request_id(headers),
            _stack(exc),
        )
        return 500, failure_body("internal error")

    failed_in_handler = False

    async def run(item: Notification) -> None:
        nonlocal failed_in_handler
        try:
            await awaitable(handler(item))
        except Exception:
            failed_in_handler = True
            raise

    tag = (notification.id, notification.event_type, notification.request_id)
    try:
        outcome = await inbox.process(notification, run)
    except HandlerNotAwaitableError:
        # A handler that is not async after all: the inbox recorded the ID as done (its side
        # effect has run) and logged the ERROR; WeChat's retry is answered as a duplicate.
        return 500, failure_body("handler failed")
    except HandlerTimeoutError:
        # Cancelled by the inbox (which logged it) and released: WeChat's retry runs it again.
        return 500, failure_body("handler timed out")
    except Exception:
        if failed_in_handler:
            log.warning(
                "notification %s (%s) handler failed; released for redelivery Request-ID=%s",
                *tag,
                exc_info=True,
            )
            return 500, failure_body("handler failed")
        log.warning("notification %s (%s) inbox failed Request-ID=%s", *tag, exc_info=True)
        return 503, failure_body("inbox unavailable")
    if outcome is Outcome.IN_PROGRESS:
        log.info("notification %s (%s) still in flight elsewhere Request-ID=%s", *tag)
        return 503, failure_body("notification in progress, retry later")
    log.info("notification %s (%s) %s Request-ID=%s", tag[0], tag[1], outcome.value, tag[2])
    return 204, b""


def aiohttp_handler(
    verifier: NotificationVerifier,
    handler: NotificationHandler,
    *,
    inbox: Inbox | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An ``aiohttp.web`` request handler for a ``notify_url`` route.

    ``handler`` is ``async def handler(notification) -> None`` (or a bound async method, a
    ``functools.partial`` of one, an object with ``async def __call__``); anything else, a
    ``verifier`` without ``async parse`` or an ``inbox`` that is not an inbox raises
    :class:`ValidationError` here, at construction. Without ``inbox`` the route gets a
    :class:`MemoryInbox` of its own (duplicates run once per process); pass a
    :class:`SqliteInbox` or :class:`RedisInbox` when several processes serve the route.
    Answers as :func:`handle_notification` does.
    Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357020
    """
    box = inbox if inbox is not None else MemoryInbox()
    _check_collaborators(verifier, handler, box)

    async def notify(request: web.Request) -> web.Response:
        body = await request.read()
        status, payload = await _handle(verifier, handler, request.headers, body, box)
        if not payload:
            return web.Response(status=status)
        return web.Response(status=status, body=payload, content_type="application/json")

    return notify
