"""What a call does when something around it fails: the key lookup, the pool, the client, the
body of an error answer, the clock's window, the access token in an error."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from wxpay_async import (
    BadRequestError,
    CertificateTrust,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SignatureVerificationError,
    TransportError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.products import cloudbase

from .fake_wechat import GET, PUBLIC_KEY_ID, UNSAFE_POST, Answer, FakeWeChat


def public_key_client(
    credentials: MerchantCredentials, fake: FakeWeChat, **options: Any
) -> WxPayClient:
    settings: dict[str, Any] = {
        "trust": PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        "hosts": Hosts.single(fake.url),
        "retry": RetryPolicy(attempts=3, sleep=False),
        **options,
    }
    return WxPayClient(credentials, **settings)


async def test_a_failed_key_download_does_not_replace_wechats_error_answer(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    fake.certificate_failures = 10  # every download answers 500 SYSTEM_ERROR
    fake.answers.append(
        Answer(400, {"code": "PARAM_ERROR", "message": "bad field"}, twist="serial:ABCDEF")
    )
    trust = CertificateTrust(min_refresh_gap=0)
    async with public_key_client(credentials, fake, trust=trust) as client:
        with pytest.raises(BadRequestError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
    assert info.value.code == "PARAM_ERROR"  # WeChat's answer, not the download's 500
    assert not info.value.verified


async def test_a_success_whose_key_cannot_be_fetched_is_refused_as_unverified(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    fake.certificate_failures = 10
    fake.answers.append(Answer(200, {"ok": 1}, twist="serial:ABCDEF"))
    trust = CertificateTrust(min_refresh_gap=0)
    async with public_key_client(credentials, fake, trust=trust) as client:
        with pytest.raises(SignatureVerificationError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
    assert "ABCDEF" in str(info.value)
    assert info.value.request_id is not None  # the answer's, for WeChat support


async def test_a_certificate_list_outside_the_window_is_refused(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    fake.answers.append(Answer(body=fake.certificate_list(), twist="stale"))  # 1,000 s old
    trust = CertificateTrust(min_refresh_gap=0)
    async with public_key_client(credentials, fake, trust=trust) as client:
        with pytest.raises(SignatureVerificationError):
            await trust.refresh()
        await client.send(GET)  # a fresh list is accepted
    assert len(trust.certificates) == 1


@pytest.mark.parametrize("window", [math.nan, math.inf, 0, -1, "300"])
def test_the_signature_window_must_be_finite_positive_seconds(
    credentials: MerchantCredentials, fake: FakeWeChat, window: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        public_key_client(credentials, fake, signature_window=window)
    assert info.value.field == "signature_window"


@pytest.mark.parametrize("timeout", [math.nan, 0, -1, aiohttp.ClientTimeout(total=math.nan)])
def test_the_timeout_must_be_finite_positive_seconds(
    credentials: MerchantCredentials, fake: FakeWeChat, timeout: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        public_key_client(credentials, fake, timeout=timeout)
    assert info.value.field.startswith("timeout")


async def slow_gets(fake: FakeWeChat, delay: float) -> None:
    """GETs answer after ``delay`` seconds (holding their pooled connection meanwhile)."""
    answer = fake.handle

    async def slow(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            await asyncio.sleep(delay)
        return await answer(request)

    fake.handle = slow  # type: ignore[method-assign]
    await fake.close()
    await fake.start()


async def test_no_connection_within_the_connect_timeout_is_retried_even_when_unsafe(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # One pooled connection, held by a slow GET: the POST waits for it past the connect
    # timeout, each attempt. Nothing was sent, so the unsafe POST may be tried again.
    await slow_gets(fake, 1.0)
    timeout = aiohttp.ClientTimeout(total=5, connect=0.1)
    client = public_key_client(credentials, fake, timeout=timeout, connections_per_host=1)
    async with client:
        holder = asyncio.create_task(client.send(GET))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeoutError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
        await holder
    assert info.value.connection_failed
    assert "after 3 attempt(s)" in str(info.value)
    assert [seen.method for seen in fake.seen] == ["GET"]  # the POST never left


async def test_no_connection_within_the_connect_timeout_fails_over_to_the_backup(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    await slow_gets(fake, 1.0)
    primary, backup = fake.url, fake.url.replace("127.0.0.1", "localhost")
    hosts = Hosts(
        mainland=primary, mainland_backup=backup, global_=primary, weixin=primary, failover=True
    )
    timeout = aiohttp.ClientTimeout(total=5, connect=0.1)
    client = public_key_client(
        credentials, fake, hosts=hosts, timeout=timeout, connections_per_host=1
    )
    async with client:
        holder = asyncio.create_task(client.send(GET))
        await asyncio.sleep(0.05)
        raw = await client.send(UNSAFE_POST, body=b"{}")
        await holder
    assert raw.status == 200
    assert sorted(seen.method for seen in fake.seen) == ["GET", "POST"]


async def test_a_call_retrying_when_the_client_closes_ends_in_a_transport_error(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.default = Answer(500, {"code": "SYSTEM_ERROR", "message": "busy"})
    retry = RetryPolicy(attempts=5, wait_initial=0.2, wait_jitter=0)
    client = public_key_client(credentials, fake, retry=retry)
    call = asyncio.create_task(client.send(GET))
    await asyncio.sleep(0.1)  # the first attempt is answered at once; its backoff is 0.2 s
    assert len(fake.seen) == 1
    await client.aclose()
    with pytest.raises(TransportError) as info:
        await call
    assert "closed" in str(info.value)
    assert len(fake.seen) == 1


async def test_a_deeply_nested_error_body_is_still_an_api_error(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # An unsigned error body (a proxy's, say) that would exhaust the JSON parser's recursion.
    fake.answers.append(Answer(502, b"[" * 200_000, signed=False))
    async with public_key_client(credentials, fake, retry=RetryPolicy.none()) as client:
        with pytest.raises(ServerError) as info:
            await client.send(GET)
    assert info.value.status == 502


async def test_the_access_token_is_unreachable_from_a_timeout(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    token = "ACCESS-TOKEN-SECRET-123"
    await slow_gets(fake, 1.0)
    timeout = aiohttp.ClientTimeout(total=5, connect=0.1)
    client = public_key_client(
        credentials,
        fake,
        access_token=token,
        timeout=timeout,
        connections_per_host=1,
        retry=RetryPolicy.none(),
    )
    async with client:
        # A slow GET holds the only connection: the cloud-base call times out connecting, and
        # aiohttp's error for that quotes the URL, access token included.
        holder = asyncio.create_task(client.send(GET))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeoutError) as info:
            await cloudbase.get_wechatpay_auth(client, "bind", "1900006511")
        await holder
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert token not in str(info.value)
