from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from wxpay_async.sandbox import Sandbox


def application(i: int, sp_mchid: str) -> dict[str, Any]:
    """A valid HK onboarding application, distinct per ``i`` (plaintext contact)."""
    return {
        "sp_appid": "wxd678efh567hg6787",
        "sp_mchid": sp_mchid,
        "name": f"Fruit Store {i} Limited",
        "shortname": f"Fruit {i}",
        "office_phone": "+85223456789",
        "contact": {
            "name": f"Contact {i}",
            "phone": "+85291234567",
            "email": f"owner{i}@fruit.example",
        },
        "business_category": 343,
        "merchant_country_code": "344",
        "merchant_type": "ENTERPRISE",
        "registration_certificate_number": f"5555-{i:04d}",
        "registration_certificate_date": "PERMANENT",
        "business": {"business_type": "ONLINE", "mcc": "5344", "website": "https://fruit.example"},
        "director": {"name": "Tom", "number": "1234567890"},
    }


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.start(key_mode="public_key", seed=7, time_scale=0.001) as sb:
        yield sb
