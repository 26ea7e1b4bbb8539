"""The sandbox's insides, shared by the HTTP handlers and the Python API."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ..crypto import Padding
from ._clock import SimClock
from ._faults import Faults
from ._identity import Identity
from ._notify import Notifier
from ._protocol import RequestVerifier, ResponseSigner, SigningKey
from ._state import SandboxState

__all__ = ["Core", "KeyMode", "Options", "RecordedRequest", "TokenBook"]

KeyMode = Literal["public_key", "certificate"]
_REDACTED = "<redacted>"


@attrs.frozen(kw_only=True)
class Options:
    """Behaviour switches fixed at start."""

    key_mode: KeyMode = "public_key"
    #: Real seconds added to every answer (network round trip to WeChat).
    latency: float = 0.0
    #: False skips Authorization checks (benchmarks of client-side cost only).
    verify_requests: bool = True
    #: Media IDs in request bodies must have been issued by this sandbox's upload endpoint.
    strict_media: bool = True
    #: Simulated seconds an H5 application waits in PENDING before UNDER_REVIEW (~1 minute).
    h5_queue_seconds: float = 60.0
    #: Simulated seconds of review before an H5 application is approved on its own
    #: (None: only ``review_h5_application`` decides). WeChat quotes about three working days.
    h5_review_seconds: float | None = 3 * 24 * 3600.0
    #: Simulated seconds before an onboarded sub-merchant turns "Approved" on its own.
    submerchant_review_seconds: float | None = 600.0
    #: Allowed distance between a request's timestamp and the sandbox clock.
    signature_window: float = 300.0
    #: ``sb.requests`` keeps at most this many of the latest requests: each holds its body
    #: (~2 KB for an onboarding), so a long load run would otherwise grow without bound.
    max_recorded_requests: int = 10_000


@attrs.define(kw_only=True)
class RecordedRequest:
    """One request as received (``sb.requests``); the Authorization header is redacted."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = attrs.field(repr=False)
    status: int | None = None
    fault: str | None = None
    request_id: str | None = None

    @classmethod
    def capture(
        cls, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> RecordedRequest:
        shown = {
            name: (_REDACTED if name.lower() == "authorization" else value)
            for name, value in headers.items()
        }
        return cls(method=method, path=path, headers=shown, body=body)


class TokenBook:
    """Access tokens for ``/tcb/*``: one current token; expired ones answer 42001."""

    def __init__(self) -> None:
        self.current = self._new()
        self._expired: set[str] = set()

    @staticmethod
    def _new() -> str:
        return "SANDBOX_ACCESS_TOKEN_" + secrets.token_urlsafe(24)

    def expire(self) -> str:
        """Expire the current token and issue a new one."""
        self._expired.add(self.current)
        self.current = self._new()
        return self.current

    def errcode(self, token: str | None) -> int:
        if not token:
            return 41001
        if token == self.current:
            return 0
        return 42001 if token in self._expired else 40014


class Core:
    """Identity, state, clocks, faults and the notifier of one running sandbox."""

    def __init__(
        self, identity: Identity, options: Options, clock: SimClock, seed: int | None
    ) -> None:
        self.identity = identity
        self.options = options
        self.clock = clock
        self.faults = Faults(seed)
        self.state = SandboxState()
        self.tokens = TokenBook()
        self.requests: list[RecordedRequest] = []
        self.signer = ResponseSigner(self.signing_key, clock.wall)
        self.verifier = RequestVerifier(
            mchid=identity.mchid,
            serial_no=lambda: identity.merchant_serial,
            public_key=lambda: identity.merchant_public_key,
            window=options.signature_window,
            clock=clock.wall,
        )
        self.notifier = Notifier(
            signer=self.signer,
            apiv3_key=identity.apiv3_key.encode(),
            clock=clock,
            faults=self.faults,
        )
        self._timers: set[asyncio.TimerHandle] = set()
        #: Which RSA padding sensitive fields arrived with last (tried first next time).
        self.padding_order = [Padding.OAEP, Padding.PKCS1V15]

    @property
    def mchid(self) -> str:
        return self.identity.mchid

    def signing_key(self) -> SigningKey:
        """Public-key mode signs with the ``PUB_KEY_ID_`` key, else the newest certificate."""
        if self.options.key_mode == "public_key":
            return SigningKey(self.identity.pubkey_id, self.identity.pubkey_key)
        cert = self.identity.current_certificate
        return SigningKey(cert.serial_no, cert.private_key)

    def platform_public_key(self) -> tuple[str, RSAPublicKey]:
        key = self.signing_key()
        return key.serial, key.private_key.public_key()

    def record(self, request: RecordedRequest) -> None:
        requests = self.requests
        requests.append(request)
        limit = self.options.max_recorded_requests
        if len(requests) > limit + limit // 10:
            del requests[: len(requests) - limit]  # trimmed in chunks, not on every request

    def later(self, simulated: float, callback: Callable[[], Any]) -> None:
        """Run ``callback`` after ``simulated`` sandbox seconds (cancelled at stop)."""
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = self.clock.call_later(simulated, run)
        self._timers.add(handle)

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        await self.notifier.close()
