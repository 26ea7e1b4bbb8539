"""The aiohttp handler and handle_notification: status codes, bodies, retries, logs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from wxpay_async import TransportError
from wxpay_async.notify import (
    Inbox,
    MemoryInbox,
    Notification,
    NotificationVerifier,
    aiohttp_handler,
    handle_notification,
)

from ._factory import APIV3_KEY, PERMISSION_RESOURCE, NotificationFactory

Client = TestClient[web.Request, web.Application]


class Handler:
    def __init__(self, *, failures: int = 0, delay: float = 0.0) -> None:
        self.seen: list[Notification] = []
        self.failures = failures
        self.delay = delay
        self.started = asyncio.Event()

    async def __call__(self, notification: Notification) -> None:
        self.seen.append(notification)
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is down")


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    clients: list[Client] = []

    async def start(verifier: NotificationVerifier, handler: Any, **options: Any) -> Client:
        app = web.Application()
        app.router.add_post("/notify", aiohttp_handler(verifier, handler, **options))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def post(client: Client, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    async with client.post("/notify", data=body, headers=headers) as response:
        return response.status, await response.read()


def failure(payload: bytes) -> str:
    document = json.loads(payload)
    assert document["code"] == "FAIL"
    assert 0 < len(document["message"]) <= 64
    message: str = document["message"]
    return message


async def test_success_then_duplicate_answer_204(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory, handler: Handler
) -> None:
    client = await serve(verifier, handler)
    headers, body = factory.make()
    assert await post(client, headers, body) == (204, b"")
    assert await post(client, factory.headers(body), body) == (204, b"")  # WeChat's retry
    assert len(handler.seen) == 1
    assert handler.seen[0].event_type == "PAYSCORE.USER_OPEN_SERVICE"


def _bad_signature(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    headers, body = f.make()
    return headers, body.replace(b"encrypt-resource", b"encrypt-resourcf")


def _probe(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    headers, body = f.make()
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    return headers, body


def _stale(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    body = f.body(PERMISSION_RESOURCE)
    return f.headers(body, timestamp=f.now - 301), body


def _missing(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    headers, body = f.make()
    del headers["Wechatpay-Nonce"]
    return headers, body


def _serial(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    headers, body = f.make()
    headers["Wechatpay-Serial"] = "PUB_KEY_ID_0000000000000000000000000000"
    return headers, body


def _wrong_key(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    body = f.body(PERMISSION_RESOURCE, key=b"K" * 32)
    return f.headers(body), body


def _malformed(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    body = b'{"id": "EV-1"}'
    return f.headers(body), body


def _algorithm(f: NotificationFactory) -> tuple[dict[str, str], bytes]:
    body = f.body(PERMISSION_RESOURCE, algorithm="AEAD_SM4_GCM")
    return f.headers(body), body


@pytest.mark.parametrize(
    ("build", "status"),
    [
        (_bad_signature, 401),
        (_probe, 401),
        (_stale, 401),
        (_missing, 401),
        (_serial, 401),
        (_wrong_key, 400),
        (_malformed, 400),
        (_algorithm, 400),
    ],
)
async def test_bad_notifications_are_refused_without_running_the_handler(
    serve: Any,
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    handler: Handler,
    build: Callable[[NotificationFactory], tuple[dict[str, str], bytes]],
    status: int,
) -> None:
    client = await serve(verifier, handler)
    headers, body = build(factory)
    answer_status, payload = await post(client, headers, body)
    assert answer_status == status
    message = failure(payload)
    assert APIV3_KEY.decode() not in message
    assert handler.seen == []


async def test_handler_failure_answers_500_and_the_retry_runs_it_again(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    handler = Handler(failures=1)
    client = await serve(verifier, handler)
    headers, body = factory.make()
    status, payload = await post(client, headers, body)
    assert status == 500
    assert failure(payload) == "handler failed"  # not the handler's own exception text
    assert await post(client, factory.headers(body), body) == (204, b"")
    assert await post(client, factory.headers(body), body) == (204, b"")
    assert len(handler.seen) == 2


async def test_a_handler_past_handler_timeout_answers_500_and_the_retry_runs_it(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    calls: list[str] = []

    async def first_call_hangs(notification: Notification) -> None:
        calls.append(notification.id)
        if len(calls) == 1:
            await asyncio.Event().wait()

    client = await serve(verifier, first_call_hangs, inbox=MemoryInbox(handler_timeout=0.05))
    headers, body = factory.make()
    status, payload = await post(client, headers, body)
    assert (status, failure(payload)) == (500, "handler timed out")
    assert await post(client, factory.headers(body), body) == (204, b"")
    assert await post(client, factory.headers(body), body) == (204, b"")
    assert len(calls) == 2


async def test_in_flight_duplicate_answers_503_then_204(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    handler = Handler(delay=0.1)
    client = await serve(verifier, handler, inbox=MemoryInbox(wait=0))
    headers, body = factory.make()
    first = asyncio.create_task(post(client, headers, body))
    await handler.started.wait()
    status, payload = await post(client, factory.headers(body), body)
    assert status == 503
    assert "retry" in failure(payload)
    assert await first == (204, b"")
    assert await post(client, factory.headers(body), body) == (204, b"")
    assert len(handler.seen) == 1


async def test_concurrent_duplicates_over_http_run_the_handler_once(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    handler = Handler(delay=0.05)
    client = await serve(verifier, handler)  # its own MemoryInbox, default wait
    headers, body = factory.make()
    answers = await asyncio.gather(*(post(client, headers, body) for _ in range(20)))
    assert answers == [(204, b"")] * 20
    assert len(handler.seen) == 1


class FailingTrust:
    async def verification_key(self, serial: str) -> RSAPublicKey:
        raise TransportError("certificate download: connection refused")


async def test_trust_outage_answers_503(
    serve: Any, factory: NotificationFactory, handler: Handler
) -> None:
    verifier = NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=FailingTrust(), clock=lambda: factory.now
    )
    client = await serve(verifier, handler)
    status, payload = await post(client, *factory.make())
    assert status == 503
    assert failure(payload) == "verification temporarily unavailable"


class BrokenInbox(MemoryInbox):
    async def _complete(self, key: str, token: str) -> None:
        raise ConnectionError("store went away")


async def test_inbox_outage_answers_503_not_handler_failure(
    serve: Any, verifier: NotificationVerifier, factory: NotificationFactory, handler: Handler
) -> None:
    client = await serve(verifier, handler, inbox=BrokenInbox())
    status, payload = await post(client, *factory.make())
    assert status == 503
    assert failure(payload) == "inbox unavailable"


async def test_handle_notification_is_framework_neutral(
    verifier: NotificationVerifier, factory: NotificationFactory, handler: Handler
) -> None:
    inbox: Inbox = MemoryInbox()
    headers, body = factory.make()
    asgi = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    assert await handle_notification(verifier, handler, asgi, body, inbox=inbox) == (204, b"")
    status, payload = await handle_notification(verifier, handler, asgi, body + b" ", inbox=inbox)
    assert status == 401
    assert failure(payload) == "signature verification failed"


async def test_logs_carry_ids_but_no_secrets_or_contents(
    serve: Any,
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await serve(verifier, Handler(failures=1))
    headers, body = factory.make(notification_id="EV-LOGGED")
    caplog.set_level(logging.DEBUG, logger="wxpay_async")
    await post(client, headers, body)  # handler fails
    await post(client, factory.headers(body), body)  # processed
    await post(client, *_probe(factory))  # probe
    await post(client, *_bad_signature(factory))
    text = caplog.text
    assert "EV-LOGGED" in text
    assert headers["Request-ID"] in text
    assert "probe" in text
    for secret in (
        APIV3_KEY.decode(),
        headers["Wechatpay-Signature"],
        *(PERMISSION_RESOURCE[k] for k in ("openid", "appid", "authorization_code")),
    ):
        assert secret not in text
    levels = {r.levelno for r in caplog.records}
    assert levels <= {logging.INFO, logging.WARNING}
