"""``Sandbox``: start, inspect, drive and stop a local WeChat Pay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from .._client import WxPayClient
from .._config import Hosts, MerchantCredentials, RetryPolicy
from ..trust import CertificateTrust, PublicKeyTrust, Trust
from ._app import build_app
from ._clock import SimClock
from ._core import Core, KeyMode, Options, RecordedRequest
from ._faults import Faults
from ._identity import Identity
from ._notify import Delivery
from ._routes_cloudbase import confirm
from ._routes_h5 import review_application
from ._routes_merchants import approve_submerchant
from ._routes_payscore import accept_authorization, close_authorization
from ._state import APPROVED, H5Application, PayScoreAuthorization, SandboxState, SubMerchant

__all__ = ["DEFAULT_SP_APPID", "DEFAULT_SUB_MCHID", "Sandbox"]

#: A sub-merchant every sandbox starts with (Approved), for H5 and PayScore calls that need one.
DEFAULT_SUB_MCHID = "1900000110"
DEFAULT_SP_APPID = "wxd678efh567hg6787"
_KEY_MODES = ("public_key", "certificate")


class Sandbox:
    """A running sandbox. Start it with :meth:`start`, either way::

        async with Sandbox.start() as sb:          # stopped on exit
            ...
        sb = await Sandbox.start(port=8480)        # long-running; call ``await sb.stop()``

    ``time_scale`` is real seconds per simulated second (``0.001`` runs the notification retry
    schedule and review queues a thousand times faster); ``latency`` adds real seconds to
    every answer; ``seed`` makes random fault rates reproducible.
    """

    def __init__(self, core: Core, runner: web.AppRunner, url: str) -> None:
        self._core = core
        self._runner = runner
        self.url = url
        self.trust: Trust = self.new_trust()

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        port: int = 0,
        key_mode: KeyMode = "public_key",
        *,
        host: str = "127.0.0.1",
        latency: float = 0.0,
        time_scale: float = 1.0,
        seed: int | None = None,
        verify_requests: bool = True,
        merchant_private_key: str | bytes | RSAPrivateKey | None = None,
        identity: Identity | None = None,
        **options: Any,
    ) -> _Starting:
        """Serve on ``host:port`` (0 picks a free port); await it or use ``async with``.

        Extra keyword options are :class:`Options` fields (``strict_media``,
        ``h5_review_seconds``, ``submerchant_review_seconds``, ``signature_window``, ...).
        """
        if key_mode not in _KEY_MODES:
            raise ValueError(f"key_mode must be one of {_KEY_MODES}")
        opts = Options(
            key_mode=key_mode, latency=latency, verify_requests=verify_requests, **options
        )
        if identity is None:
            identity = Identity.generate(merchant_private_key=merchant_private_key)
        core = Core(identity, opts, SimClock(time_scale), seed)
        return _Starting(cls._serve(core, host, port))

    @classmethod
    async def _serve(cls, core: Core, host: str, port: int) -> Sandbox:
        _seed_state(core)
        runner = web.AppRunner(build_app(core), access_log=None, keepalive_timeout=8.0)
        await runner.setup()
        # A deep accept queue: load tests open hundreds of connections at once.
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        return cls(core, runner, f"http://{shown}:{bound[1]}")

    async def stop(self) -> None:
        """Stop serving, cancel timers and pending notification deliveries."""
        await self._core.close()
        await self._runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, key_mode={self.key_mode!r})"

    # -- what a client needs -----------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        return self._core.identity

    @property
    def key_mode(self) -> KeyMode:
        return self._core.options.key_mode

    @property
    def credentials(self) -> MerchantCredentials:
        """The sandbox merchant (mchid ``1900000109`` unless an identity was given)."""
        identity = self._core.identity
        return MerchantCredentials(
            mchid=identity.mchid,
            serial_no=identity.merchant_serial,
            private_key=identity.merchant_key,
            apiv3_key=identity.apiv3_key,
        )

    def new_trust(self) -> Trust:
        """A fresh trust object for one client (a CertificateTrust binds to one client)."""
        if self.key_mode == "public_key":
            identity = self._core.identity
            return PublicKeyTrust(identity.pubkey_id, identity.pubkey_key.public_key())
        # No refresh gap: rotation tests need the "unknown serial → one refresh" path at once.
        return CertificateTrust(min_refresh_gap=0.0)

    def client(self, **overrides: Any) -> WxPayClient:
        """A WxPayClient wired to this sandbox (fast retries); keyword arguments win."""
        settings: dict[str, Any] = {
            "trust": self.new_trust(),
            "hosts": Hosts.single(self.url),
            "retry": RetryPolicy(wait_initial=0.001, wait_max=0.01, wait_jitter=0),
            "access_token": self.access_token_provider,
        }
        settings.update(overrides)
        credentials = settings.pop("credentials", None) or self.credentials
        return WxPayClient(credentials, **settings)

    @property
    def access_token(self) -> str:
        """The currently valid token for ``/tcb/*``."""
        return self._core.tokens.current

    @property
    def access_token_provider(self) -> Callable[[], Awaitable[str]]:
        """An async callable returning the current token (what a token service would do)."""

        async def provide() -> str:
            return self._core.tokens.current

        return provide

    def expire_access_token(self) -> str:
        """Make the current token answer 42001 and issue a new one (returned)."""
        return self._core.tokens.expire()

    # -- inspection --------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._core.faults

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._core.requests

    @property
    def state(self) -> SandboxState:
        return self._core.state

    @property
    def deliveries(self) -> list[Delivery]:
        return self._core.notifier.deliveries

    @property
    def submerchant_count(self) -> int:
        """Sub-merchants created through the API (the seeded default one is not counted)."""
        return sum(1 for s in self._core.state.submerchants.values() if s.idempotency_key)

    def created_count(self, idempotency_key: str) -> int:
        """How many sub-merchants ``idempotency_key`` created (1 when idempotency holds)."""
        return self._core.state.created_by_key[idempotency_key]

    # -- simulated people --------------------------------------------------------------------------

    async def accept_payscore_authorization(
        self, authorization_code: str, openid: str = "oUserSandbox0000000000000000"
    ) -> PayScoreAuthorization:
        """The user agrees in the PayScore mini program: AVAILABLE + USER_OPEN_SERVICE."""
        return accept_authorization(self._core, authorization_code, openid)

    async def close_payscore_authorization(self, authorization_code: str) -> PayScoreAuthorization:
        """The user closes the service: UNAVAILABLE + USER_CLOSE_SERVICE."""
        return close_authorization(self._core, authorization_code)

    async def review_h5_application(
        self, applyment_id: int, approve: bool = True, reason: str | None = None
    ) -> H5Application:
        """A reviewer decides: APPROVED/REJECTED + APPLYMENT_STATE.* notification."""
        return review_application(self._core, applyment_id, approve=approve, reason=reason)

    def approve_submerchant(self, sub_mchid: str) -> None:
        """Finish a sub-merchant's verification now ("Approved")."""
        approve_submerchant(self._core, sub_mchid)

    def confirm_cloudbase(self, merchant_code: str, action: str) -> None:
        """The merchant confirms a ``/tcb/wxpayopenauth`` request (state 1 → 2)."""
        confirm(self._core, merchant_code, action)

    # -- keys and notifications --------------------------------------------------------------------

    def rotate_platform_certificate(self) -> str:
        """Issue a new platform certificate (listed at once, signing from now on); its serial."""
        return self._core.identity.rotate().serial_no

    @property
    def wechatpay_serial(self) -> str:
        """The serial answers are signed under now (``PUB_KEY_ID_…`` or a certificate serial)."""
        return self._core.signing_key().serial

    def route_notifications(self, url_prefix: str, target_base: str) -> None:
        """Deliver notify_urls starting with ``url_prefix`` to ``target_base`` (loopback only)."""
        self._core.notifier.route(url_prefix, target_base)

    async def drain_notifications(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until queued deliveries finished or gave up; TimeoutError after ``timeout``."""
        await self._core.notifier.drain(timeout)


class _Starting:
    """What :meth:`Sandbox.start` returns: awaitable, and an async context manager."""

    def __init__(self, starting: Awaitable[Sandbox]) -> None:
        self._starting = starting
        self._sandbox: Sandbox | None = None

    def __await__(self) -> Generator[Any, None, Sandbox]:
        return self._starting.__await__()

    async def __aenter__(self) -> Sandbox:
        self._sandbox = await self._starting
        return self._sandbox

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sandbox is not None:
            await self._sandbox.stop()


def _seed_state(core: Core) -> None:
    core.state.submerchants[DEFAULT_SUB_MCHID] = SubMerchant(
        sub_mchid=DEFAULT_SUB_MCHID,
        data={
            "sp_appid": DEFAULT_SP_APPID,
            "name": "Sandbox Default Sub-merchant Ltd",
            "shortname": "Sandbox Shop",
            "office_phone": "+85200000000",
            "merchant_country_code": "344",
            "business_category": 343,
            "merchant_type": "ENTERPRISE",
            "business": {"business_type": "ONLINE"},
        },
        contact={"name": "Sandbox", "phone": "+85200000000", "email": "sandbox@example.com"},
        verification_status=APPROVED,
    )
