"""Where a call stops: redirects, cut-off answers, rate limits, timeouts, unsafe identifiers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from wxpay_async import (
    APIError,
    Endpoint,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RateLimitedError,
    RetryPolicy,
    TransportError,
    ValidationError,
    WxPayClient,
)

from .conftest import APIV3_KEY
from .fake_wechat import PUBLIC_KEY_ID, Answer, FakeWeChat

GET = Endpoint(name="state", method="GET", host="mainland", path="/v3/state/{sub_mchid}")
CREATE = Endpoint(
    name="create", method="POST", host="mainland", path="/hk/v3/merchants", idempotency_key=True
)
UNSAFE_PATCH = Endpoint(name="modify", method="PATCH", host="mainland", path="/v3/modify")
RATE_LIMITED = {"code": "FREQUENCY_LIMITED", "message": "too fast"}


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[TestServer, list[bytes]]]:
    """Another origin that records whatever reaches it."""
    received: list[bytes] = []

    async def collect(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"ok": 1})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", collect)
    server = TestServer(app)
    await server.start_server()
    yield server, received
    await server.close()


async def test_a_redirect_is_not_followed(
    client: WxPayClient, fake: FakeWeChat, elsewhere: tuple[TestServer, list[bytes]]
) -> None:
    server, received = elsewhere
    location = str(server.make_url("/collect"))
    fake.answers.append(Answer(307, b"", signed=False, headers={"Location": location}))
    with pytest.raises(APIError) as info:
        await client.send(CREATE, body=b'{"name":"Acme"}', idempotency_key="k1")
    assert info.value.status == 307
    assert not info.value.verified
    assert "redirect" in info.value.message
    assert received == []  # neither the body nor a signed Authorization left for Location
    assert len(fake.seen) == 1


async def cut_off_server(hits: list[int]) -> asyncio.Server:
    """Answers every request with a body shorter than its Content-Length, then hangs up."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        hits.append(1)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"sub_mchid":')
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


@pytest.mark.parametrize(("endpoint", "attempts"), [(GET, 3), (UNSAFE_PATCH, 1)])
async def test_an_answer_cut_off_mid_body_is_retried_where_safe(
    credentials: MerchantCredentials, endpoint: Endpoint, attempts: int
) -> None:
    hits: list[int] = []
    server = await cut_off_server(hits)
    port = server.sockets[0].getsockname()[1]
    try:
        async with WxPayClient(
            credentials,
            trust=PublicKeyTrust(PUBLIC_KEY_ID, FakeWeChat(APIV3_KEY).public_key_pem),
            hosts=Hosts.single(f"http://127.0.0.1:{port}"),
            retry=RetryPolicy(attempts=3, sleep=False),
        ) as c:
            with pytest.raises(TransportError, match=f"ClientPayloadError after {attempts} "):
                await c.send(endpoint, path_params={"sub_mchid": "1"}, body=b"{}")
    finally:
        server.close()
        await server.wait_closed()
    assert len(hits) == attempts  # the PATCH may have been applied: not sent twice


async def test_rate_limited_requests_are_retried_even_where_unsafe(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    # A 429 is refused before processing: sending it again cannot apply the PATCH twice.
    fake.answers.extend([Answer(429, RATE_LIMITED), Answer(200, {"ok": 1})])
    raw = await client.send(UNSAFE_PATCH, body=b"{}")
    assert raw.status == 200
    assert len(fake.seen) == 2


def limited_client(
    credentials: MerchantCredentials, fake: FakeWeChat, retry: RetryPolicy, timeout: float
) -> WxPayClient:
    return WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts.single(fake.url),
        retry=retry,
        timeout=timeout,
    )


async def stall(fake: FakeWeChat, *, first: int) -> list[float]:
    """Make the first ``first`` requests hang for 5 s; returns their arrival times as they come."""
    answer = fake.handle
    arrivals: list[float] = []

    async def stalling(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        if len(arrivals) <= first:
            await asyncio.sleep(5)
        return await answer(request)

    fake.handle = stalling  # type: ignore[method-assign]
    # The fake routes through ``self.handle`` when it starts: restart it with the new one.
    await fake.close()
    await fake.start()
    return arrivals


async def test_the_timeout_limits_each_attempt_not_the_whole_call(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    arrivals = await stall(fake, first=1)
    retry = RetryPolicy(attempts=3, sleep=False)
    async with limited_client(credentials, fake, retry, timeout=0.5) as c:
        raw = await c.send(GET, path_params={"sub_mchid": "1"})
    assert raw.status == 200
    assert len(arrivals) == 2  # the stalled attempt, then one that answered
    assert arrivals[1] - arrivals[0] < 2.0


async def test_a_backoff_does_not_use_up_the_timeout(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    # Three waits of 0.3 s (Retry-After) add up to more than the 0.5 s timeout: the caller
    # still gets WeChat's last answer, not a timeout.
    fake.default = Answer(429, RATE_LIMITED, headers={"Retry-After": "0.3"})
    async with limited_client(credentials, fake, RetryPolicy(attempts=4), timeout=0.5) as c:
        with pytest.raises(RateLimitedError):
            await c.send(GET, path_params={"sub_mchid": "1"})
    assert len(fake.seen) == 4


async def test_the_deadline_cuts_an_attempt_short(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    await stall(fake, first=4)
    retry = RetryPolicy(attempts=4, sleep=False, deadline=0.4)
    async with limited_client(credentials, fake, retry, timeout=10.0) as c:
        started = time.monotonic()
        with pytest.raises(TransportError, match="timeout"):
            await c.send(GET, path_params={"sub_mchid": "1"})
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("value", [".", ".."])
async def test_dot_segments_are_refused_as_path_parameters(
    client: WxPayClient, fake: FakeWeChat, value: str
) -> None:
    with pytest.raises(ValidationError, match=r"sub_mchid: must not be '\.' or '\.\.'"):
        await client.send(GET, path_params={"sub_mchid": value})
    assert fake.seen == []


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("mchid", '1900000109",serial_no="EVIL', "letters and digits"),
        ("mchid", "1900 0001", "letters and digits"),
        ("serial_no", "ABC\r\nX-Injected: 1", "hexadecimal"),
        ("serial_no", "SERIAL-1", "hexadecimal"),
    ],
)
def test_identifiers_that_would_alter_the_authorization_header_are_refused(
    rsa_key_pem: bytes, field: str, value: str, rule: str
) -> None:
    options = {"mchid": "1900000109", "serial_no": "5157F09E", field: value}
    with pytest.raises(ValidationError, match=rule) as info:
        MerchantCredentials(**options, private_key=rsa_key_pem, apiv3_key=APIV3_KEY)
    assert info.value.field == field
