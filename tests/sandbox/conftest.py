"""Sandbox test fixtures: the plugin's fixtures, plus both key modes as one parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from wxpay_async import WxPayClient
from wxpay_async.sandbox import Sandbox
from wxpay_async.sandbox.pytest_plugin import (  # noqa: F401 - fixtures used by name
    wxpay_sandbox,
    wxpay_sandbox_certificate,
)

FAST = 0.001  # real seconds per simulated second


@pytest_asyncio.fixture(params=["public_key", "certificate"])
async def sb(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """A sandbox in each key mode."""
    async with Sandbox.start(key_mode=request.param, time_scale=FAST) as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def client(sb: Sandbox) -> AsyncIterator[WxPayClient]:
    async with sb.client() as c:
        yield c
