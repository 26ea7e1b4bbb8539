"""One call's budget: the deadline over retries and a failover, the minimum time an attempt
must have, a pool per host, and what the client keeps between calls (nothing)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from wxpay_async import (
    Endpoint,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ValidationError,
    WxPayClient,
)

from .fake_wechat import GET, PUBLIC_KEY_ID, UNSAFE_POST, Answer, FakeWeChat

RATE_LIMITED = {"code": "FREQUENCY_LIMITED", "message": "too fast"}


def client_for(credentials: MerchantCredentials, fake: FakeWeChat, **options: Any) -> WxPayClient:
    settings: dict[str, Any] = {
        "trust": PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        "hosts": Hosts.single(fake.url),
        **options,
    }
    return WxPayClient(credentials, **settings)


async def slow_from(fake: FakeWeChat, nth: int, *, methods: str = "GET POST") -> list[str]:
    """From the ``nth`` request on (counting from 1), ``methods`` answer after 3 s.

    Returns the methods of the requests as they arrive (``fake.seen`` lists them answered).
    """
    answer = fake.handle
    arrived: list[str] = []

    async def slow(request: web.Request) -> web.StreamResponse:
        arrived.append(request.method)
        if len(arrived) >= nth and request.method in methods.split():
            await asyncio.sleep(3)
        return await answer(request)

    fake.handle = slow  # type: ignore[method-assign]
    await fake.close()
    await fake.start()
    return arrived


def failover_hosts(fake: FakeWeChat) -> Hosts:
    primary, backup = fake.url, fake.url.replace("127.0.0.1", "localhost")
    return Hosts(
        mainland=primary, mainland_backup=backup, global_=primary, weixin=primary, failover=True
    )


def failover_client(
    credentials: MerchantCredentials, fake: FakeWeChat, *, connect: float, retry: RetryPolicy
) -> WxPayClient:
    """One connection per host, mainland failing over to the backup, ``connect`` s to get one."""
    return client_for(
        credentials,
        fake,
        hosts=failover_hosts(fake),
        timeout=aiohttp.ClientTimeout(total=5, connect=connect),
        retry=retry,
        connections_per_host=1,
    )


@contextlib.asynccontextmanager
async def holding_a_connection(client: WxPayClient) -> AsyncIterator[None]:
    """A slow GET (see ``slow_from``) holds the mainland pool's connection meanwhile."""
    holder = asyncio.create_task(client.send(GET))
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        holder.cancel()


async def test_a_refusal_is_returned_rather_than_a_retry_too_short_to_finish(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # A 429 says the POST was not processed. A retry left with 0.4 s would time out against
    # this slow server, and a timed-out POST may or may not have been applied.
    await slow_from(fake, 2)
    fake.answers.append(Answer(429, RATE_LIMITED, headers={"Retry-After": "1.6"}))
    retry = RetryPolicy(attempts=3, wait_jitter=0, deadline=2.0, min_attempt_time=0.5)
    async with client_for(credentials, fake, retry=retry) as client:
        with pytest.raises(RateLimitedError):
            await client.send(UNSAFE_POST, body=b"{}")
    assert len(fake.seen) == 1


async def test_without_a_minimum_the_retry_runs_into_the_deadline(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # The same call with min_attempt_time=0 (the behaviour before it existed): an unknown outcome.
    await slow_from(fake, 2)
    fake.answers.append(Answer(429, RATE_LIMITED, headers={"Retry-After": "1.6"}))
    retry = RetryPolicy(attempts=3, wait_jitter=0, deadline=2.0, min_attempt_time=0)
    async with client_for(credentials, fake, retry=retry) as client:
        with pytest.raises(RequestTimeoutError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
    assert not info.value.connection_failed


async def test_a_short_deadline_still_leaves_room_for_retries(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # The minimum is at most a quarter of the deadline: with 0.5 s, retries still happen.
    busy = Answer(503, {"code": "SYSTEM_ERROR", "message": "busy"})
    fake.answers.extend([busy, busy, Answer()])
    retry = RetryPolicy(attempts=3, wait_initial=0.01, wait_jitter=0, deadline=0.5)
    async with client_for(credentials, fake, retry=retry) as client:
        raw = await client.send(GET)
    assert raw.status == 200
    assert len(fake.seen) == 3


async def test_a_deadline_that_ends_the_wait_for_a_connection_reports_nothing_sent(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # The deadline (0.5 s) ends the attempt before aiohttp's connect timeout (10 s) would:
    # the POST never had a connection, so its outcome is known, not "no answer".
    arrived = await slow_from(fake, 1, methods="GET")
    client = client_for(credentials, fake, retry=RetryPolicy(attempts=1), connections_per_host=1)
    async with client, holding_a_connection(client):
        client.retry = RetryPolicy(attempts=1, deadline=0.5)  # for the POST only
        with pytest.raises(RequestTimeoutError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
    assert info.value.connection_failed
    assert "no connection" in str(info.value)
    assert arrived == ["GET"]


async def test_a_failover_shares_the_calls_deadline(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # A slow GET holds the primary's only connection: three POST attempts wait 0.3 s each for
    # it (connect timeout, nothing sent), then the backup gets what is left of the 1.5 s deadline.
    arrived = await slow_from(fake, 1)
    retry = RetryPolicy(attempts=3, sleep=False, deadline=1.5, min_attempt_time=0.1)
    async with (
        failover_client(credentials, fake, connect=0.3, retry=retry) as client,
        holding_a_connection(client),
    ):
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
        elapsed = time.monotonic() - started
    assert not info.value.connection_failed  # the backup's POST was sent and not answered
    assert arrived == ["GET", "POST"]
    assert elapsed < 2.0  # a fresh deadline for the backup would end at ~2.4 s


async def test_no_failover_with_less_than_an_attempts_minimum_left(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    arrived = await slow_from(fake, 1, methods="GET")
    retry = RetryPolicy(attempts=3, sleep=False, deadline=2.0, min_attempt_time=0.5)
    async with (
        failover_client(credentials, fake, connect=0.55, retry=retry) as client,
        holding_a_connection(client),
    ):
        with pytest.raises(RequestTimeoutError) as info:
            await client.send(UNSAFE_POST, body=b"{}")
    # Three attempts on the primary (0.55 s each), then 0.35 s left: less than the 0.5 s a
    # failover's attempt needs to be worth starting.
    assert info.value.connection_failed
    assert "after 3 attempt(s)" in str(info.value)
    assert arrived == ["GET"]


async def test_a_busy_host_does_not_starve_another(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # One connection per host: while a slow GET holds mainland's, a POST to the global host
    # still gets its own at once (and nothing fails over).
    arrived = await slow_from(fake, 1, methods="GET")
    hosts = failover_hosts(fake)
    hosts = Hosts(
        mainland=hosts.mainland,
        mainland_backup="http://127.0.0.1:9",  # refused: a failover would show
        global_=hosts.mainland_backup,
        weixin=hosts.weixin,
        failover=True,
    )
    other = Endpoint(name="apply", method="POST", host="global_", path="/v3/apply")
    timeout = aiohttp.ClientTimeout(total=5, connect=0.5)
    retry = RetryPolicy(attempts=1)
    client = client_for(credentials, fake, hosts=hosts, timeout=timeout, retry=retry, connections=1)
    async with client, holding_a_connection(client):
        raw = await client.send(other, body=b"{}")
    assert raw.status == 200
    assert arrived == ["GET", "POST"]


@pytest.mark.parametrize("option", ["connections", "connections_per_host"])
@pytest.mark.parametrize("value", [0, -1, 2.5, "10"])
def test_the_pool_limits_must_be_positive_integers(
    credentials: MerchantCredentials, fake: FakeWeChat, option: str, value: Any
) -> None:
    # aiohttp reads 0 as "unlimited".
    with pytest.raises(ValidationError) as info:
        client_for(credentials, fake, **{option: value})
    assert info.value.field == option


async def test_cookies_set_by_a_server_are_not_sent_back(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.answers.append(Answer(headers={"Set-Cookie": "tracking=abc; Path=/"}))
    host = fake.url.replace("127.0.0.1", "localhost")  # aiohttp keeps no cookies for IPs
    retry = RetryPolicy(attempts=1)
    async with client_for(credentials, fake, hosts=Hosts.single(host), retry=retry) as client:
        await client.send(GET)
        await client.send(GET)
    assert [seen.headers.get("Cookie") for seen in fake.seen] == [None, None]
