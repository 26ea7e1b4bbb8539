"""pytest fixtures that start a sandbox per test (pytest-asyncio, function scope).

Enable in a ``conftest.py``::

    pytest_plugins = ["wxpay_async.sandbox.pytest_plugin"]

then ask for ``wxpay_sandbox`` (public-key mode) or ``wxpay_sandbox_certificate``
(platform-certificate mode). Both run simulated time a thousand times faster
(``time_scale=0.001``) so notification retries and review queues finish within a test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from ._sandbox import Sandbox

__all__ = ["wxpay_sandbox", "wxpay_sandbox_certificate"]

TEST_TIME_SCALE = 0.001


@pytest_asyncio.fixture
async def wxpay_sandbox() -> AsyncIterator[Sandbox]:
    """A started sandbox in WeChat Pay public-key mode (``Wechatpay-Serial: PUB_KEY_ID_…``)."""
    async with Sandbox.start(key_mode="public_key", time_scale=TEST_TIME_SCALE) as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def wxpay_sandbox_certificate() -> AsyncIterator[Sandbox]:
    """A started sandbox in platform-certificate mode (clients download the certificates)."""
    async with Sandbox.start(key_mode="certificate", time_scale=TEST_TIME_SCALE) as sandbox:
        yield sandbox
