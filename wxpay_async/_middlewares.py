"""The three aiohttp client middlewares every v3 call passes through: retry → sign → verify.

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
    "CallState",
    "retry_middleware",
    "should_retry",
    "sign_middleware",
    "verify_middleware",
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


def retry_middleware(
    state: CallState, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic
) -> aiohttp.ClientMiddlewareType:
    """Repeat the inner chain on retryable outcomes, within ``policy``."""
    safe = state.endpoint.safe_to_retry

    async def retry(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        started = clock()
        attempt = 0
        while True:
            attempt += 1
            state.attempts = attempt
            retry_after: float | None = None
            error: BaseException | None = None
            pending: ClientResponse | None = None
            try:
                response = await handler(req)
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

    return retry


def sign_middleware(
    state: CallState, credentials: MerchantCredentials, executor: Executor | None = None
) -> aiohttp.ClientMiddlewareType:
    """Put a fresh Authorization header on each attempt, over the exact URL and body bytes.

    With ``executor``, the RSA signature is computed there: ``cryptography`` releases the GIL
    while signing, so a spare core signs while the event loop keeps serving other requests.
    """

    async def sign(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        args = (req.method, state.canonical_url, state.sign_body, int(time.time()))
        if executor is None:
            authorization = credentials.authorization(*args)
        else:
            loop = asyncio.get_running_loop()
            authorization = await loop.run_in_executor(executor, credentials.authorization, *args)
        req.headers["Authorization"] = authorization
        return await handler(req)

    return sign


def verify_middleware(
    state: CallState, trust: Trust, window: float, clock: Callable[[], float] = time.time
) -> aiohttp.ClientMiddlewareType:
    """Verify each answer's ``Wechatpay-*`` signature over its raw body.

    A 2xx that does not verify raises :class:`SignatureVerificationError` and its body is never
    used. A 4xx/5xx is passed on, marked verified or not, so the caller can report it.
    """

    async def verify(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        response = await handler(req)
        body = await response.read()
        success = response.status < 300
        state.verified = False
        if "Wechatpay-Signature" not in response.headers:  # case-insensitive (CIMultiDict)
            if success:
                response.release()
                raise SignatureVerificationError(
                    f"HTTP {response.status} answer has no Wechatpay-Signature: treated as forged",
                    request_id=response.headers.get("Request-ID"),
                )
            return response
        try:
            signed = SignedHeaders.from_headers(response.headers)
            signed.check_basic()
            check_timestamp(signed, window, clock)
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
            return response
        state.verified = True
        return response

    return verify
