"""End to end: the sandbox sends a signed, encrypted notification to a merchant aiohttp app.

The sandbox plays WeChat Pay (its own keys, its own retry schedule, scaled 1000x faster); the
merchant side is exactly what a user deploys: NotificationVerifier.from_client + aiohttp_handler.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from wxpay_async.notify import (
    Inbox,
    MemoryInbox,
    Notification,
    NotificationVerifier,
    SqliteInbox,
    aiohttp_handler,
)

sandbox = pytest.importorskip("wxpay_async.sandbox")
payscore = pytest.importorskip("wxpay_async.products.payscore_permissions")

NOTIFY_URL = "https://merchant.example/notify"


class Merchant:
    """The merchant's notification endpoint: an aiohttp app recording what its handler saw."""

    def __init__(self) -> None:
        self.seen: list[Notification] = []

    async def handle(self, notification: Notification) -> None:
        self.seen.append(notification)


async def serve(verifier: NotificationVerifier, merchant: Merchant, inbox: Inbox) -> TestServer:
    app = web.Application()
    app.router.add_post("/notify", aiohttp_handler(verifier, merchant.handle, inbox=inbox))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def authorize(client: Any, code: str) -> None:
    await payscore.apply_permissions(
        client,
        {
            "service_id": "500001",
            "channel_id": "1900000108",
            "appid": sandbox.DEFAULT_SP_APPID,
            "sub_mchid": sandbox.DEFAULT_SUB_MCHID,
            "authorization_code": code,
            "notify_url": NOTIFY_URL,
        },
    )


@pytest.fixture(params=["public_key", "certificate"])
async def sb(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    async with sandbox.Sandbox.start(port=0, key_mode=request.param, time_scale=0.001) as running:
        yield running


@pytest.mark.parametrize(
    ("fault", "answers"),
    [
        ("signtest", [("signtest", 401), ("normal", 204)]),  # a probe-signed copy first
        ("duplicate", [("normal", 204), ("duplicate", 204)]),  # delivered again after success
    ],
)
async def test_payscore_authorization_reaches_the_merchant_once(
    sb: Any, tmp_path: Path, fault: str, answers: list[tuple[str, int]]
) -> None:
    merchant = Merchant()
    async with sb.client() as client, SqliteInbox(tmp_path / "inbox.db") as inbox:
        server = await serve(NotificationVerifier.from_client(client), merchant, inbox)
        try:
            sb.route_notifications("https://merchant.example", f"http://127.0.0.1:{server.port}")
            code = uuid.uuid4().hex
            await authorize(client, code)
            sb.faults.queue_notification(fault)
            await sb.accept_payscore_authorization(code)
            await sb.drain_notifications()
        finally:
            await server.close()

    assert len(merchant.seen) == 1
    notification = merchant.seen[0]
    assert notification.event_type == "PAYSCORE.USER_OPEN_SERVICE"
    assert notification.original_type == "payscore"
    resource = notification.resource
    assert isinstance(resource, payscore.PermissionNotification)
    assert resource.authorization_code == code
    assert resource.sub_mchid == sandbox.DEFAULT_SUB_MCHID
    assert resource.user_service_status == "USER_OPEN_SERVICE"

    assert [(d.variant, d.status) for d in sb.deliveries] == answers


async def test_open_then_close_arrive_as_two_typed_events(sb: Any) -> None:
    merchant = Merchant()
    async with sb.client() as client:
        server = await serve(NotificationVerifier.from_client(client), merchant, MemoryInbox())
        try:
            sb.route_notifications("https://merchant.example", f"http://127.0.0.1:{server.port}")
            code = uuid.uuid4().hex
            await authorize(client, code)
            await sb.accept_payscore_authorization(code)
            await sb.drain_notifications()
            await sb.close_payscore_authorization(code)
            await sb.drain_notifications()
        finally:
            await server.close()
    assert [n.event_type for n in merchant.seen] == [
        "PAYSCORE.USER_OPEN_SERVICE",
        "PAYSCORE.USER_CLOSE_SERVICE",
    ]
    assert len({n.id for n in merchant.seen}) == 2


async def test_failing_handler_is_retried_on_the_sandbox_schedule(sb: Any) -> None:
    attempts: list[str] = []

    async def flaky(notification: Notification) -> None:
        attempts.append(notification.id)
        if len(attempts) < 3:
            raise RuntimeError("merchant database briefly unavailable")

    async with sb.client() as client:
        app = web.Application()
        verifier = NotificationVerifier.from_client(client)
        app.router.add_post("/notify", aiohttp_handler(verifier, flaky))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            sb.route_notifications("https://merchant.example", f"http://127.0.0.1:{server.port}")
            code = uuid.uuid4().hex
            await authorize(client, code)
            await sb.accept_payscore_authorization(code)
            await sb.drain_notifications()
        finally:
            await server.close()
    assert len(attempts) == 3
    assert len(set(attempts)) == 1
    assert [d.status for d in sb.deliveries] == [500, 500, 204]


async def test_h5_review_result_arrives_as_an_application(sb: Any) -> None:
    h5 = pytest.importorskip("wxpay_async.products.h5_permission")
    merchant = Merchant()
    async with sb.client() as client:
        server = await serve(NotificationVerifier.from_client(client), merchant, MemoryInbox())
        try:
            sb.route_notifications("https://merchant.example", f"http://127.0.0.1:{server.port}")
            application = await h5.create_application(
                client,
                {
                    "sub_mchid": sandbox.DEFAULT_SUB_MCHID,
                    "domains": ["shop.example.com"],
                    "website_url": "https://shop.example.com/products",
                    "notify_url": NOTIFY_URL,
                },
            )
            await sb.review_h5_application(application.applyment_id, approve=False, reason="x")
            await sb.drain_notifications()
        finally:
            await server.close()
    assert len(merchant.seen) == 1
    notification = merchant.seen[0]
    assert notification.event_type.startswith("APPLYMENT_STATE.")
    assert isinstance(notification.resource, h5.H5ApplicationNotification)
    assert notification.resource.applyment_id == application.applyment_id
    assert notification.resource.applyment_state == "REJECTED"
