"""The aiohttp client middleware every call passes through: retry → sign → verify.

Retry is outermost, so every attempt is signed afresh (new timestamp and nonce: WeChat refuses a
reused nonce) and verified afresh. The body bytes and the Idempotency-Key are fixed before the
chain starts and are the same on every attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import Executor
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.connector import Connection

from ._config import MerchantCredentials, RetryPolicy
from ._endpoint import Endpoint
from ._errors import (
    SignatureVerificationError,
    TransportError,
    UnknownSerialError,
    WxPayError,
)
from .crypto import SignedHeaders

if TYPE_CHECKING:
    from .trust import Trust

__all__ = [
    "RATE_LIMITED_CODES",
    "RETRYABLE_CODES",
    "RETRYABLE_STATUSES",
    "CallMiddleware",
    "CallSettings",
    "TrackingConnector",
    "should_retry",
]

log = logging.getLogger("wxpay_async")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Rate limiting (spec §B11): the request was refused unprocessed, so every endpoint may send
#: it again, after a backoff, whether or not it is otherwise safe to retry.
RATE_LIMITED_CODES = frozenset(
    {"FREQUENCY_LIMITED", "FREQUENCY_LIMIT_EXCEED", "RATELIMIT_EXCEEDED"}
)
RETRYABLE_CODES = RATE_LIMITED_CODES | {
    "SYSTEM_ERROR",
    "SERVICE_UNAVAILABLE",
    "-1",  # api.weixin.qq.com: system busy
    "-1000",  # api.weixin.qq.com: system error
}


def should_retry(
    *,
    safe: bool,
    status: int | None = None,
    code: str | None = None,
    exc: BaseException | None = None,
) -> bool:
    """Whether an attempt's outcome deserves another attempt (pure: no policy, no clock).

    ``safe`` says whether the request may be sent again after it possibly reached the server.
    """
    if exc is not None:
        if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
            return True  # the connection was never made (refused, or timed out): nothing sent
        if isinstance(
            exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)
        ):
            return safe  # the request may have been processed; the answer was lost or cut off
        return False
    if status is None:
        return False
    if status == 429 or code in RATE_LIMITED_CODES:
        return True  # refused before processing: sending it again cannot do anything twice
    if status in RETRYABLE_STATUSES or code in RETRYABLE_CODES:
        return safe
    return False


#: Whether the current attempt got a connection (see TrackingConnector). A context variable:
#: the pool's ``connect`` runs in the task of the call whose middleware reads it, and setting
#: one costs less than tracking the request objects.
_CONNECTED: ContextVar[bool] = ContextVar("wxpay_async_connected", default=False)


class TrackingConnector(aiohttp.TCPConnector):
    """A TCP pool that notes, for the attempt running in the calling task, that it got a
    connection (``_CONNECTED``; the middleware clears it before each attempt).

    When an attempt's timer (the deadline's share) fires before its request had a connection,
    nothing was sent: the call reports "no connection" (retried on every endpoint, failed over
    like a refused connection) rather than "no answer", whose outcome would be unknown.
    """

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        _CONNECTED.set(True)
        return connection


def _error_code(endpoint: Endpoint, body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # unverified bytes: any proxy may have written them
        return None
    if not isinstance(document, dict):
        return None
    if endpoint.protocol == "weixin":
        errcode = document.get("errcode")
        return None if errcode in (None, 0) else str(errcode)
    code = document.get("code")
    return code if isinstance(code, str) else None


def _retry_after(response: ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class CallSettings(Protocol):
    """What a call reads from its client when it starts (``WxPayClient`` has these attributes)."""

    credentials: MerchantCredentials
    trust: Trust
    retry: RetryPolicy
    sign_executor: Executor | None
    signature_window: float
    #: ``total``: the limit of one attempt (connecting, sending, the whole answer).
    timeout: aiohttp.ClientTimeout

    @property
    def closed(self) -> bool:
        """Whether the client was closed (no further attempt may start)."""


class CallMiddleware:
    """Retry → sign → verify for one call, as a single aiohttp client middleware.

    Each attempt is signed afresh and its answer verified before the retry decision sees it.
    The object is also the call's state: fixed before the first attempt (endpoint, the exact
    URL and signed body bytes) and reported back by the attempts (``attempts``, ``verified``).
    One object per call instead of three chained closures and a state record: fewer
    allocations and frames held across the network wait, which a large batch pays for in
    garbage collection. The client's settings are read when the call starts, so a changed
    ``client.retry`` or ``client.trust`` applies to the next call. ``api.weixin.qq.com``
    endpoints are neither signed nor verified; ``verify_response=False`` (the certificate
    download, checked by its own means) is not verified.

    Each attempt, its answer's body included, gets the client's ``timeout.total`` (cut to what
    is left of ``retry.deadline``, which runs from the call's start, over a failover to the
    backup host too); the waits between attempts count toward the deadline only.
    A timer over the whole call would fire during a backoff and lose the answer that caused
    it, or let later attempts run after the caller had been told the call timed out.
    """

    __slots__ = (
        "attempt_limit",
        "attempts",
        "canonical_url",
        "endpoint",
        "settings",
        "sign_body",
        "started",
        "verified",
    )

    def __init__(
        self, settings: CallSettings, endpoint: Endpoint, canonical_url: str, sign_body: bytes
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.canonical_url = canonical_url
        self.sign_body = sign_body
        #: Attempts made so far, on every host of the call.
        self.attempts = 0
        #: Attempts allowed on the host being tried: ``None`` for the retry policy's; a
        #: failover to the backup host sets 1 (it is tried once).
        self.attempt_limit: int | None = None
        self.verified = False
        #: When the call started: its deadline runs from here, across a failover too.
        self.started = time.monotonic()

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        settings, endpoint = self.settings, self.endpoint
        v3 = endpoint.protocol == "v3"
        credentials = settings.credentials if v3 else None
        executor = settings.sign_executor
        trust = settings.trust if v3 and endpoint.verify_response else None
        policy = settings.retry
        safe = endpoint.safe_to_retry
        per_attempt = settings.timeout.total
        limit_here = policy.attempts if self.attempt_limit is None else self.attempt_limit
        attempt = 0  # on this host (the backoff's count); ``self.attempts`` is the call's
        while True:
            attempt += 1
            self.attempts += 1
            retry_after: float | None = None
            error: BaseException | None = None
            pending: ClientResponse | None = None
            try:
                if credentials is not None:
                    if executor is None:
                        req.headers["Authorization"] = credentials.authorization(
                            req.method, self.canonical_url, self.sign_body, int(time.time())
                        )
                    else:
                        await self._sign_in_executor(req, credentials, executor)
                limit = per_attempt
                if policy.deadline is not None:
                    left = max(0.0, policy.time_left(self.started))
                    limit = left if limit is None else min(limit, left)
                _CONNECTED.set(False)
                async with asyncio.timeout(limit):
                    response = await handler(req)
                    if trust is not None:
                        await self._verify(response, trust, settings.signature_window)
                    else:
                        await response.read()  # the whole answer, within this attempt's time
            except (TimeoutError, aiohttp.ClientError) as exc:
                if type(exc) is TimeoutError and not _CONNECTED.get():
                    # The attempt's timer fired while it waited for a connection: not sent.
                    cut = aiohttp.ConnectionTimeoutError(f"no connection to {req.url.host}")
                    cut.__cause__ = exc
                    exc = cut
                if not should_retry(safe=safe, exc=exc) or attempt >= limit_here:
                    raise exc
                error = exc
                outcome = type(exc).__name__
            else:
                status = response.status
                if status < 400 and v3:
                    return response
                code = _error_code(endpoint, await response.read())
                if not should_retry(safe=safe, status=status, code=code):
                    return response
                if attempt >= limit_here:
                    return response
                outcome = f"HTTP {status} {code or ''}".strip()
                retry_after = _retry_after(response)
                pending = response
            wait = policy.wait_before(attempt, retry_after)
            if policy.time_left(self.started) - wait < policy.attempt_minimum:
                log.info("%s: retry deadline reached after %s", endpoint.name, outcome)
                if pending is not None:
                    return pending
                assert error is not None
                raise error
            if pending is not None:
                pending.release()  # give the connection back before sleeping
            log.info("%s attempt %d: %s; retrying in %.2fs", endpoint.name, attempt, outcome, wait)
            if wait > 0:
                await asyncio.sleep(wait)
            if settings.closed:
                # aclose() ran meanwhile: its sessions are gone, so no attempt can start.
                raise TransportError(
                    f"{endpoint.name}: the client was closed before attempt {self.attempts + 1}"
                )

    async def _sign_in_executor(
        self, req: ClientRequest, credentials: MerchantCredentials, executor: Executor
    ) -> None:
        """A fresh Authorization header over the exact URL and body bytes, signed in ``executor``.

        ``cryptography`` releases the GIL while signing, so a spare core signs while the event
        loop serves other requests. (Without an executor ``__call__`` signs inline: no extra
        coroutine per attempt.)
        """
        args = (req.method, self.canonical_url, self.sign_body, int(time.time()))
        loop = asyncio.get_running_loop()
        authorization = await loop.run_in_executor(executor, credentials.authorization, *args)
        req.headers["Authorization"] = authorization

    async def _verify(self, response: ClientResponse, trust: Trust, window: float) -> None:
        """Verify the answer's ``Wechatpay-*`` signature over its raw body.

        A 2xx that does not verify raises :class:`SignatureVerificationError` and its body is
        never used. A 4xx/5xx is passed on, marked verified or not, so the caller can report it.
        """
        body = await response.read()
        success = response.status < 300
        self.verified = False
        headers = response.headers
        if "Wechatpay-Signature" not in headers:  # case-insensitive (CIMultiDict)
            if success:
                response.release()
                raise SignatureVerificationError(
                    f"HTTP {response.status} answer has no Wechatpay-Signature: treated as forged",
                    request_id=headers.get("Request-ID"),
                )
            return
        try:
            signed = SignedHeaders.checked(headers, window)
            try:
                key = await trust.verification_key(signed.serial)
            except (SignatureVerificationError, UnknownSerialError):
                raise
            except WxPayError as exc:
                # The key could not be fetched (a certificate download failed): the answer
                # cannot be verified, but it is still WeChat's answer, not the download's.
                raise UnknownSerialError(
                    f"no key for Wechatpay-Serial {signed.serial}: fetching it failed"
                    f" ({type(exc).__name__})",
                    request_id=signed.request_id,
                ) from exc
            if not signed.verifies(key, body):
                raise SignatureVerificationError(
                    "response signature does not verify", request_id=signed.request_id
                )
        except (SignatureVerificationError, UnknownSerialError):
            if success:
                response.release()
                raise
            return
        self.verified = True
