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
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import aiohttp
import attrs
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

from ._config import MerchantCredentials, RetryPolicy
from ._endpoint import Endpoint
from ._errors import SignatureVerificationError, UnknownSerialError
from .crypto import SignedHeaders, build_response_message, check_timestamp, verify_signature

if TYPE_CHECKING:
    from .trust import Trust

__all__ = [
    "RETRYABLE_CODES",
    "RETRYABLE_STATUSES",
    "CallMiddleware",
    "CallState",
    "should_retry",
]

log = logging.getLogger("wxpay_async")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset(
    {
        "SYSTEM_ERROR",
        "SERVICE_UNAVAILABLE",
        "FREQUENCY_LIMITED",
        "FREQUENCY_LIMIT_EXCEED",
        "RATELIMIT_EXCEEDED",
        "-1",  # api.weixin.qq.com: system busy
        "-1000",  # api.weixin.qq.com: system error
    }
)


@attrs.define(kw_only=True)
class CallState:
    """What one call fixes before its first attempt, and what its attempts report back."""

    endpoint: Endpoint
    canonical_url: str
    sign_body: bytes
    attempts: int = 0
    verified: bool = False


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
        if isinstance(exc, aiohttp.ClientConnectorError):
            return True  # the connection was never made: nothing was sent
        if isinstance(exc, (aiohttp.ClientConnectionError, asyncio.TimeoutError)):
            return safe
        return False
    if status is None:
        return False
    if status in RETRYABLE_STATUSES or code in RETRYABLE_CODES:
        return safe
    return False


def _error_code(endpoint: Endpoint, body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
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


class CallMiddleware:
    """Retry → sign → verify for one call, as a single aiohttp client middleware.

    Each attempt is signed afresh and its answer verified before the retry decision sees it.
    One object per call instead of three chained closures: fewer allocations and coroutine
    frames held across the network wait, which a large batch pays for in garbage collection.
    ``credentials=None`` skips signing (``api.weixin.qq.com``), ``trust=None`` verification
    (the certificate download, checked by its own means).
    """

    __slots__ = ("clock", "credentials", "executor", "policy", "state", "trust", "wall", "window")

    def __init__(
        self,
        state: CallState,
        policy: RetryPolicy,
        *,
        credentials: MerchantCredentials | None = None,
        executor: Executor | None = None,
        trust: Trust | None = None,
        window: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.policy = policy
        self.credentials = credentials
        self.executor = executor
        self.trust = trust
        self.window = window
        self.clock = clock
        self.wall = wall

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        state, policy, clock = self.state, self.policy, self.clock
        safe = state.endpoint.safe_to_retry
        started = clock()
        attempt = 0
        while True:
            attempt += 1
            state.attempts = attempt
            retry_after: float | None = None
            error: BaseException | None = None
            pending: ClientResponse | None = None
            try:
                if self.credentials is not None:
                    await self._sign(req, self.credentials)
                response = await handler(req)
                if self.trust is not None:
                    await self._verify(response, self.trust)
            except (TimeoutError, aiohttp.ClientError) as exc:
                if not should_retry(safe=safe, exc=exc) or attempt >= policy.attempts:
                    raise
                error = exc
                outcome = type(exc).__name__
            else:
                status = response.status
                if status < 400 and state.endpoint.protocol == "v3":
                    return response
                code = _error_code(state.endpoint, await response.read())
                if not should_retry(safe=safe, status=status, code=code):
                    return response
                if attempt >= policy.attempts:
                    return response
                outcome = f"HTTP {status} {code or ''}".strip()
                retry_after = _retry_after(response)
                pending = response
            wait = policy.wait_before(attempt, retry_after)
            if policy.deadline is not None and clock() - started + wait > policy.deadline:
                log.info("%s: retry deadline reached after %s", state.endpoint.name, outcome)
                if pending is not None:
                    return pending
                assert error is not None
                raise error
            if pending is not None:
                pending.release()  # give the connection back before sleeping
            log.info(
                "%s attempt %d: %s; retrying in %.2fs", state.endpoint.name, attempt, outcome, wait
            )
            if wait > 0:
                await asyncio.sleep(wait)

    async def _sign(self, req: ClientRequest, credentials: MerchantCredentials) -> None:
        """A fresh Authorization header over the exact URL and body bytes.

        With an executor the RSA signature is computed there: ``cryptography`` releases the
        GIL while signing, so a spare core signs while the event loop serves other requests.
        """
        state = self.state
        args = (req.method, state.canonical_url, state.sign_body, int(self.wall()))
        if self.executor is None:
            authorization = credentials.authorization(*args)
        else:
            loop = asyncio.get_running_loop()
            authorization = await loop.run_in_executor(
                self.executor, credentials.authorization, *args
            )
        req.headers["Authorization"] = authorization

    async def _verify(self, response: ClientResponse, trust: Trust) -> None:
        """Verify the answer's ``Wechatpay-*`` signature over its raw body.

        A 2xx that does not verify raises :class:`SignatureVerificationError` and its body is
        never used. A 4xx/5xx is passed on, marked verified or not, so the caller can report it.
        """
        state = self.state
        body = await response.read()
        success = response.status < 300
        state.verified = False
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
            signed = SignedHeaders.from_headers(headers)
            signed.check_basic()
            check_timestamp(signed, self.window, self.wall)
            key = await trust.verification_key(signed.serial)
            message = build_response_message(signed.timestamp, signed.nonce, body)
            if not verify_signature(key, message, signed.signature):
                raise SignatureVerificationError(
                    "response signature does not verify", request_id=signed.request_id
                )
        except (SignatureVerificationError, UnknownSerialError):
            if success:
                response.release()
                raise
            return
        state.verified = True
