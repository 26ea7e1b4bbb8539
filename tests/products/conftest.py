"""Fixtures for the product tests: throwaway keys, a client, and a server that records calls."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from wxpay_async import Hosts, MerchantCredentials, PublicKeyTrust, RetryPolicy, WxPayClient
from wxpay_async.notify import Notification, NotificationVerifier, aiohttp_handler
from wxpay_async.sandbox import RecordedRequest, Sandbox
from wxpay_async.sandbox.pytest_plugin import (  # noqa: F401 - fixtures used by name
    wxpay_sandbox,
    wxpay_sandbox_certificate,
)

PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"


@pytest.fixture(scope="session")
def platform_key() -> rsa.RSAPrivateKey:
    """Stands in for WeChat Pay's key pair: its public half encrypts our sensitive fields."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def merchant_pem(rsa_key_pem: bytes) -> bytes:
    return rsa_key_pem


@pytest.fixture
def credentials(merchant_pem: bytes) -> MerchantCredentials:
    return MerchantCredentials(
        mchid="1900000109",
        serial_no="5157F09EFDC096DE15EBE81A47057A72",
        private_key=merchant_pem,
        apiv3_key="0123456789abcdef0123456789abcdef",
    )


class Recorder:
    """An HTTP server that records every request and answers 500: for "nothing was sent"."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs))
        return web.json_response({"code": "SYSTEM_ERROR", "message": "recorder"}, status=500)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield rec, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def make_client(
    credentials: MerchantCredentials, platform_key: rsa.RSAPrivateKey
) -> Callable[..., WxPayClient]:
    """A client trusting ``platform_key`` (public-key mode), pointed at ``url``."""

    def build(url: str = "http://127.0.0.1:9", **overrides: Any) -> WxPayClient:
        options: dict[str, Any] = {
            "trust": PublicKeyTrust(PUBLIC_KEY_ID, platform_key.public_key()),
            "hosts": Hosts.single(url),
            "retry": RetryPolicy(attempts=1),
            "timeout": 5.0,
        }
        options.update(overrides)
        return WxPayClient(credentials, **options)

    return build


@pytest.fixture
async def quiet_client(
    recorder: tuple[Recorder, str], make_client: Callable[..., WxPayClient]
) -> AsyncIterator[tuple[WxPayClient, Recorder]]:
    """A client whose every host is the recorder."""
    rec, url = recorder
    async with make_client(url, access_token="TOKEN-SECRET-123") as client:
        yield client, rec


def platform_public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- the sandbox ---------------------------------------------------------------------------------
# Simulated time runs a thousand times faster (H5 queues, sub-merchant review, notifications).
TIME_SCALE = 0.001


@pytest.fixture
def sb(request: pytest.FixtureRequest) -> Sandbox:
    """A public-key-mode sandbox (the fixture the package ships for users' own tests)."""
    sandbox: Sandbox = request.getfixturevalue("wxpay_sandbox")
    return sandbox


@pytest.fixture(params=["public_key", "certificate"])
def sb_any_mode(request: pytest.FixtureRequest) -> Sandbox:
    """The sandbox in each key mode (WeChat Pay public key, platform certificates)."""
    name = "wxpay_sandbox" if request.param == "public_key" else "wxpay_sandbox_certificate"
    sandbox: Sandbox = request.getfixturevalue(name)
    return sandbox


def calls(sandbox: Sandbox, path_prefix: str) -> list[RecordedRequest]:
    """The requests the sandbox received for one API (certificate downloads left out)."""
    return [r for r in sandbox.requests if r.path.startswith(path_prefix)]


@pytest.fixture
def signatures(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request signature the client computes, in order (one per attempt)."""
    seen: list[str] = []
    original = MerchantCredentials.authorization

    def recording(
        self: MerchantCredentials, method: str, canonical_url: str, body: bytes, timestamp: int
    ) -> str:
        header = original(self, method, canonical_url, body, timestamp)
        seen.append(header.rpartition('signature="')[2].rstrip('"'))
        return header

    monkeypatch.setattr(MerchantCredentials, "authorization", recording)
    return seen


#: The notify_url host the sandbox is told to route to the local receiver.
MERCHANT_SITE = "https://merchant.example.com"


@contextlib.asynccontextmanager
async def notification_receiver(
    sandbox: Sandbox, client: WxPayClient, path: str
) -> AsyncIterator[list[Notification]]:
    """Serve ``MERCHANT_SITE + path`` with the library's handler; yields what it received."""
    received: list[Notification] = []

    async def on_event(notification: Notification) -> None:
        received.append(notification)

    app = web.Application()
    app.router.add_post(path, aiohttp_handler(NotificationVerifier.from_client(client), on_event))
    server = TestServer(app)
    await server.start_server()
    try:
        sandbox.route_notifications(MERCHANT_SITE, str(server.make_url("")))
        yield received
    finally:
        await server.close()
