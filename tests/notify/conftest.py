"""Fixtures for the notification tests: a signing key, a trust, and a notification factory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from wxpay_async.crypto import load_private_key
from wxpay_async.notify import NotificationVerifier
from wxpay_async.trust import PublicKeyTrust

from ._factory import APIV3_KEY, KEY_ID, NOW, NotificationFactory


@pytest.fixture(scope="session")
def platform_key(rsa_key_pem: bytes) -> RSAPrivateKey:
    """Stands in for WeChat Pay's private key (its public half is the trusted key)."""
    return load_private_key(rsa_key_pem)


@pytest.fixture
def trust(platform_key: RSAPrivateKey) -> PublicKeyTrust:
    return PublicKeyTrust(KEY_ID, platform_key.public_key())


@pytest.fixture
def factory(platform_key: RSAPrivateKey) -> NotificationFactory:
    return NotificationFactory(platform_key)


@pytest.fixture
def clock() -> Callable[[], float]:
    return lambda: float(NOW)


@pytest.fixture
def verifier(trust: PublicKeyTrust, clock: Callable[[], float]) -> NotificationVerifier:
    return NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, clock=clock)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free port, for this test session only.

    Skipped only when redis-server is absent and WXPAY_REQUIRE_REDIS is unset (CI sets it,
    so a missing server fails there instead of silently skipping).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("WXPAY_REQUIRE_REDIS"):
            pytest.fail("WXPAY_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(workdir)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            if _answers_ping(port):
                try:
                    yield f"redis://127.0.0.1:{port}/0"
                finally:
                    process.terminate()
                    process.wait(10)
                return
            time.sleep(0.02)
        process.kill()
        process.wait(10)
    pytest.fail("could not start redis-server")
