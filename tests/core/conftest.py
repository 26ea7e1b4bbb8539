from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wxpay_async import Hosts, MerchantCredentials, PublicKeyTrust, RetryPolicy, WxPayClient

from .fake_wechat import PUBLIC_KEY_ID, FakeWeChat

APIV3_KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def credentials(rsa_key_pem: bytes) -> MerchantCredentials:
    return MerchantCredentials(
        mchid="1900000109",
        serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        private_key=rsa_key_pem,
        apiv3_key=APIV3_KEY,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = await FakeWeChat(APIV3_KEY).start()
    yield server
    await server.close()


@pytest.fixture
async def client(credentials: MerchantCredentials, fake: FakeWeChat) -> AsyncIterator[WxPayClient]:
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts.single(fake.url),
        retry=RetryPolicy(attempts=4, sleep=False),
    ) as c:
        yield c
