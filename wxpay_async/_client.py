"""WxPayClient: configuration, a connection pool per host, and ``send()``/``call()``."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import yarl

from ._config import HostName, Hosts, MerchantCredentials, RetryPolicy
from ._converter import dumps, loads_utf8, structure, unstructure
from ._endpoint import Endpoint, check_idempotency_key
from ._errors import (
    RequestTimeoutError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    WxPayError,
    api_error_for,
)
from ._middlewares import CallMiddleware, TrackingConnector
from ._validation import is_async_callable, seconds
from ._version import __version__
from .crypto import SignedHeaders, max_plaintext_bytes
from .crypto.fields import encrypt_checked
from .trust import CertificateTrust, RawResponse, Trust

__all__ = ["AccessToken", "WxPayClient", "answer_document", "decode_json", "structure_answer"]

log = logging.getLogger("wxpay_async")
T = TypeVar("T")

AccessToken = str | Callable[[], Awaitable[str]]

USER_AGENT = (
    f"wxpay_async/{__version__} ({platform.system()} {platform.release()}) "
    f"Python/{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro} "
    f"aiohttp/{aiohttp.__version__}"
)
#: Below the 8 s after which WeChat's front ends close idle connections, so we never write into
#: a connection the server is closing.
KEEPALIVE_SECONDS = 5.0


class WxPayClient:
    """An async WeChat Pay v3 client; use ``async with WxPayClient(...) as client``.

    ``trust`` verifies responses and encrypts sensitive fields (default: platform certificates
    downloaded from the mainland host). ``access_token`` (a string or an async callable) is only
    needed for the api.weixin.qq.com cloud-base endpoints.

    ``timeout`` (seconds, or an ``aiohttp.ClientTimeout`` whose ``total`` is used so) limits each
    attempt: connecting, sending and reading the whole answer. ``retry.deadline`` limits the
    whole call, the waits between attempts and a failover to the backup host included.
    Each host has its own pool of at most ``min(connections, connections_per_host)``
    connections, so calls piling up on one host (a slow api.weixin.qq.com, say) never leave
    another without a connection, nor make it look unreachable and fail over. The client
    keeps no cookies.

    ``sign_executor`` (e.g. ``ThreadPoolExecutor(max_workers=1)``, owned and shut down by the
    caller) computes each request's RSA signature (~0.3 ms) off the event loop's thread, so a
    loop with time to spare is not held by it. It does not speed up a batch that keeps the
    loop busy: after each signature the signing thread needs the GIL back, and a busy loop
    gives it up only at I/O or every switch interval, so signatures queue behind Python work
    (``benchmarks/README.md`` measures both). Hence opt-in; to use more cores for a batch, run
    more processes (``wxpay-async onboard --shard``).
    """

    def __init__(
        self,
        credentials: MerchantCredentials,
        *,
        trust: Trust | None = None,
        hosts: Hosts | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | aiohttp.ClientTimeout = 30.0,
        access_token: AccessToken | None = None,
        signature_window: float = 300.0,
        connections: int = 100,
        connections_per_host: int = 64,
        sign_executor: Executor | None = None,
    ) -> None:
        if not isinstance(credentials, MerchantCredentials):
            raise ValidationError("credentials", "must be a MerchantCredentials")
        self.credentials = credentials
        self.trust: Trust = trust if trust is not None else CertificateTrust()
        self.hosts = hosts or Hosts()
        self.retry = retry or RetryPolicy()
        if isinstance(timeout, aiohttp.ClientTimeout):
            if timeout.total is not None:
                seconds("timeout.total", timeout.total)
            self.timeout = timeout
        else:
            total = seconds("timeout", timeout)
            self.timeout = aiohttp.ClientTimeout(total=total, connect=min(10.0, total))
        # NaN would switch the replay check off (no comparison with NaN is true).
        self.signature_window = seconds("signature_window", signature_window)
        if isinstance(access_token, str):
            if not access_token or not access_token.isprintable() or " " in access_token:
                raise ValidationError("access_token", "must be a non-empty token without spaces")
        elif access_token is not None and not is_async_callable(access_token):
            # A plain function (or an int) would fail only at the first cloud-base call.
            raise ValidationError(
                "access_token", "must be a token string or an async callable returning one"
            )
        self._access_token = access_token
        self._cached_token: str | None = access_token if isinstance(access_token, str) else None
        self._token_lock = asyncio.Lock()
        for name, value in (
            ("connections", connections),
            ("connections_per_host", connections_per_host),
        ):
            # aiohttp reads 0 as "no limit": a typo would lift the pool's bound silently.
            if type(value) is not int or value < 1:
                raise ValidationError(name, "must be an integer >= 1")
        self._limits = (connections, connections_per_host)
        self.sign_executor = sign_executor
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._closed = False
        self.trust.bind(self._download_certificates, credentials.apiv3_key)

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every host's pool; the client cannot be used afterwards."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        failure: BaseException | None = None
        for session in sessions:
            try:
                await session.close()
            except Exception as exc:  # the other pools are closed all the same
                failure = failure or exc
        if failure is not None:
            raise failure

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called (the client sends nothing more)."""
        return self._closed

    def __repr__(self) -> str:
        return f"WxPayClient(mchid={self.credentials.mchid!r}, trust={self.trust!r})"

    def _session(self, base: str) -> aiohttp.ClientSession:
        if self._closed:
            raise WxPayError("WxPayClient is closed")
        session = self._sessions.get(base)
        if session is None:
            total, per_host = self._limits
            connector = TrackingConnector(
                limit=total, limit_per_host=per_host, keepalive_timeout=KEEPALIVE_SECONDS
            )
            # A session per host: its own pool (see the class docstring). No cookies: nothing
            # a server (or a proxy) sets is kept and sent back to WeChat.
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                # ``total`` is applied per attempt by the middleware (see CallMiddleware);
                # aiohttp's own would run over every attempt and the waits between them.
                timeout=_without_total(self.timeout),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                auto_decompress=True,
                raise_for_status=False,
            )
            # aiohttp would silently re-send an idempotent request once after a dropped
            # keep-alive connection; our retry middleware owns that decision.
            session._retry_connection = False
            self._sessions[base] = session
        return session

    # -- access token (api.weixin.qq.com) ------------------------------------------------------

    async def access_token(self, *, refresh: bool = False, stale: str | None = None) -> str:
        """The current access token; ``refresh=True`` asks the provider for a new one.

        Pass the token that was refused as ``stale``: when many calls hit an expired token at
        once, the provider is asked once and the others get the token it returned.
        """
        provider = self._access_token
        if provider is None:
            raise ValidationError("access_token", "WxPayClient needs access_token= for this call")
        if isinstance(provider, str):
            return provider
        async with self._token_lock:
            already_refreshed = stale is not None and self._cached_token not in (None, stale)
            if (refresh and not already_refreshed) or self._cached_token is None:
                token = await provider()
                if not isinstance(token, str) or not token:
                    raise ValidationError("access_token", "the provider returned no token")
                self._cached_token = token
            return self._cached_token

    # -- sending -------------------------------------------------------------------------------

    @staticmethod
    def canonical_url(path: str, query: Mapping[str, Any] | None) -> str:
        """``path?query`` percent-encoded once; this exact string is signed and sent."""
        if not query:
            return path
        pairs = [(k, v) for k, v in query.items() if v is not None]
        if not pairs:
            return path
        return f"{path}?{urlencode(pairs, quote_via=quote, safe='')}"

    async def send(
        self,
        endpoint: Endpoint,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        sign_body: bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        host: HostName | None = None,
    ) -> RawResponse:
        """Send prepared bytes through retry → sign → verify; non-2xx raises a typed APIError.

        ``body`` is sent as is on every attempt; ``sign_body`` (default ``body``) is what the
        signature covers (the meta JSON for uploads). ``idempotency_key`` is required where the
        endpoint uses one, and sent as the ``Idempotency-Key`` header wherever it is given.
        """
        canonical = self.canonical_url(endpoint.render_path(path_params or {}), query)
        extra: dict[str, str] = dict(headers or {})
        if body is not None:
            extra["Content-Type"] = content_type
        return await self._send(
            endpoint,
            canonical,
            body,
            (sign_body if sign_body is not None else body) or b"",
            extra,
            idempotency_key,
            host,
        )

    async def _send(
        self,
        endpoint: Endpoint,
        canonical_url: str,
        body: bytes | None,
        sign_body: bytes,
        headers: dict[str, str],
        idempotency_key: str | None,
        host: HostName | None,
    ) -> RawResponse:
        """``send`` once the URL and headers are built (``headers`` is ours to add to)."""
        if endpoint.idempotency_key:
            if idempotency_key is None:
                raise ValidationError("idempotency_key", f"is required by {endpoint.name}")
            headers["Idempotency-Key"] = check_idempotency_key(idempotency_key)
        elif idempotency_key is not None:
            # Sent as given (never dropped quietly); it does not make an unsafe request one
            # that may be sent twice: only the endpoint's own rules do.
            headers["Idempotency-Key"] = check_idempotency_key(idempotency_key)
        call = CallMiddleware(self, endpoint, canonical_url, sign_body)
        host_name = host or endpoint.host
        try:
            raw = await self._send_once(call, host_name, body, headers)
        except TransportError as exc:
            if not self._may_fail_over(host_name, exc, call):
                raise
            log.warning("%s; failing over to the backup host", exc)
            call.attempt_limit = 1  # spec Part C: the backup is tried once, not retried
            raw = await self._send_once(call, "mainland_backup", body, headers)
        if raw.status >= 300 and endpoint.protocol == "v3":
            self._raise_for_status(endpoint, call, raw)
        return raw

    def _may_fail_over(
        self, host_name: HostName, exc: TransportError, call: CallMiddleware
    ) -> bool:
        return (
            self.hosts.failover
            and host_name == "mainland"
            and self.hosts.mainland_backup != self.hosts.mainland
            and exc.connection_failed
            # The backup's attempts share the call's deadline (RetryPolicy.min_attempt_time).
            and self.retry.time_left(call.started) >= self.retry.attempt_minimum
        )

    async def _send_once(
        self,
        call: CallMiddleware,
        host_name: HostName,
        body: bytes | None,
        headers: dict[str, str],
    ) -> RawResponse:
        endpoint = call.endpoint
        base = self.hosts.base(host_name)
        url = yarl.URL(base + call.canonical_url, encoded=True)
        session = self._session(base)
        started = time.perf_counter()
        failure: TransportError | None = None
        cause: BaseException | None = None
        try:
            # No redirects: an answer is WeChat's to verify, and a followed redirect would carry
            # the body and a freshly signed Authorization to wherever Location points.
            async with session.request(
                endpoint.method,
                url,
                data=body,
                headers=headers,
                middlewares=(call,),
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                # The read-only, case-insensitive view: no copy, and ``raw.headers.get(
                # "request-id")`` finds ``Request-ID`` whatever case the server used.
                raw = RawResponse(status=response.status, headers=response.headers, body=payload)
        except aiohttp.ConnectionTimeoutError as exc:  # before the generic timeout: not sent
            failure = RequestTimeoutError(
                f"{endpoint.name}: no connection within the timeout after {call.attempts}"
                " attempt(s)",
                connection_failed=True,
            )
            cause = exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            failure = RequestTimeoutError(
                f"{endpoint.name}: no answer within the timeout after {call.attempts} attempt(s)"
            )
            cause = exc
        except aiohttp.ClientError as exc:
            failure = TransportError(
                f"{endpoint.name}: {type(exc).__name__} after {call.attempts} attempt(s)",
                connection_failed=isinstance(exc, aiohttp.ClientConnectorError),
            )
            cause = exc
        if failure is not None:
            if endpoint.protocol == "weixin":
                # aiohttp's exceptions quote the URL, which carries the access token on
                # api.weixin.qq.com: raised here, outside the except block, the error has
                # neither a cause nor an implicit context to reach it through.
                raise failure
            raise failure from cause
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d in %.1f ms (attempts=%d, Request-ID=%s)",
                endpoint.method,
                call.canonical_url.partition("?")[0],
                raw.status,
                (time.perf_counter() - started) * 1000,
                call.attempts,
                raw.headers.get("Request-ID"),
            )
        return raw

    def _raise_for_status(self, endpoint: Endpoint, call: CallMiddleware, raw: RawResponse) -> None:
        code, message, detail = "UNKNOWN", "", None
        try:
            document = json.loads(raw.body) if raw.body else {}
        except (ValueError, RecursionError):
            document = {}
        if isinstance(document, dict):
            code = str(document.get("code") or code)
            message = str(document.get("message") or raw.body[:200].decode("utf-8", "replace"))
            detail = document.get("detail") if isinstance(document.get("detail"), dict) else None
        if raw.status < 400 and not message:
            message = "redirect not followed (answers come from WeChat Pay's host only)"
        raise api_error_for(
            raw.status,
            code,
            message,
            detail=detail,
            request_id=raw.headers.get("Request-ID"),
            verified=call.verified,
        )

    # -- JSON convenience ----------------------------------------------------------------------

    async def prepare_json(self, endpoint: Endpoint, payload: Any) -> tuple[bytes, dict[str, str]]:
        """Encrypt the endpoint's sensitive fields once and serialize once.

        Returns the body bytes and the headers the encryption requires (``Wechatpay-Serial``).
        """
        data = unstructure(payload)
        headers: dict[str, str] = {}
        if endpoint.encrypted_fields:
            # Every plaintext is checked before the key is fetched, which may download
            # certificates: a value too long for the platform's RSA-2048 key (spec B7) is a
            # ValidationError with nothing sent, not whatever that download ends in. (WeChat
            # Pay's keys are RSA-2048; a larger key would still be held to its limit.)
            fields = [(path, _parent_of(data, path)) for path in endpoint.encrypted_fields]
            limit = max_plaintext_bytes(2048, endpoint.padding)
            for path, (parent, leaf) in fields:
                if parent is not None:
                    _check_plaintext(parent[leaf], path, limit, endpoint)
            serial, key = await self.trust.encryption_key()
            if key.key_size < 2048:  # a test key: its own, smaller limit
                limit = max_plaintext_bytes(key.key_size, endpoint.padding)
            for path, (parent, leaf) in fields:
                if parent is not None:
                    plain = _check_plaintext(parent[leaf], path, limit, endpoint)
                    parent[leaf] = encrypt_checked(key, plain, endpoint.padding)
            headers["Wechatpay-Serial"] = serial
        return dumps(data), headers

    async def call(
        self,
        endpoint: Endpoint,
        response_type: type[T],
        *,
        payload: Any = None,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """Prepare ``payload`` (a model), send it, and structure the JSON answer."""
        canonical = self.canonical_url(endpoint.render_path(path_params or {}), query)
        if payload is None:
            raw = await self._send(endpoint, canonical, None, b"", {}, idempotency_key, None)
        else:
            body, headers = await self.prepare_json(endpoint, payload)
            headers["Content-Type"] = "application/json"
            raw = await self._send(endpoint, canonical, body, body, headers, idempotency_key, None)
        return decode_json(raw, response_type)

    async def _download_certificates(self, host: str, path: str) -> RawResponse:
        endpoint = Endpoint(
            name="certificates.download",
            method="GET",
            host=host,  # type: ignore[arg-type]
            path=path,
            verify_response=False,
        )
        raw = await self.send(endpoint)
        if raw.status == 200:
            # The list's signature is checked by the trust (against the list itself); its age
            # is checked here, with this client's window, as for every other answer: a replayed
            # old list would bring back certificates WeChat has since retired.
            SignedHeaders.checked(raw.headers, self.signature_window)
        return raw


def _without_total(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.connect,
        sock_read=timeout.sock_read,
        sock_connect=timeout.sock_connect,
        ceil_threshold=timeout.ceil_threshold,
    )


def _parent_of(data: Any, path: str) -> tuple[dict[str, Any] | None, str]:
    """The object holding dotted ``path``'s value and its key; ``None`` if absent or null."""
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict) and data.get(leaf) is not None:
        return data, leaf
    return None, leaf


def _check_plaintext(value: Any, path: str, limit: int, endpoint: Endpoint) -> bytes:
    """The UTF-8 bytes to encrypt, if they fit ``limit``; else ValidationError (no value in it)."""
    if not isinstance(value, str):
        raise ValidationError(path, "must be a string to be encrypted")
    data = value.encode()
    if len(data) > limit:
        raise ValidationError(
            path, f"must be at most {limit} bytes as UTF-8 to fit {endpoint.padding} encryption"
        )
    return data


def answer_document(raw: RawResponse) -> dict[str, Any]:
    """The JSON object of a verified answer (``{}`` for a 204 or empty body)."""
    try:
        document = loads_utf8(raw.body) if raw.body else {}
    except ValueError:  # UnicodeDecodeError included
        document = None
    if not isinstance(document, dict):
        raise UnexpectedResponseError(
            f"HTTP {raw.status} answer is not a JSON object "
            f"(Request-ID={raw.headers.get('Request-ID')})"
        )
    return document


def structure_answer(document: dict[str, Any], cls: type[T], raw: RawResponse) -> T:
    """Structure an answer's document; a shape error is the answer's fault, not the caller's."""
    try:
        return structure(document, cls)
    except ValidationError as exc:
        raise UnexpectedResponseError(
            f"unexpected response shape: {exc} (Request-ID={raw.headers.get('Request-ID')})"
        ) from None


def decode_json(raw: RawResponse, response_type: type[T]) -> T:
    """Structure a verified JSON answer into ``response_type``."""
    return structure_answer(answer_document(raw), response_type, raw)
