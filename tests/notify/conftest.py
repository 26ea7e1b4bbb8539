"""Fixtures for the notification tests: a signing key, a trust, and a notification factory."""

from __future__ import annotations

from collections.abc import Callable

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
