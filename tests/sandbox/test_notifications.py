"""Notifications reach a local aiohttp app: signed, encrypted, retried on WeChat's schedule."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tests.sandbox.helpers import (
    H5_CREATE,
    PS_APPLY,
    document,
    h5_application,
    payscore_request,
    send_json,
)
from wxpay_async import WxPayClient
from wxpay_async.crypto import (
    PROBE_PREFIX,
    aead_decrypt,
    build_response_message,
    verify_signature,
)
from wxpay_async.sandbox import Sandbox
from wxpay_async.sandbox._notify import GENERIC_SCHEDULE, schedule


@attrs.define
class Receiver:
    """A merchant endpoint that answers from a script and keeps what it got."""

    url: str = ""
    answers: list[int] = attrs.Factory(list)
    received: list[tuple[dict[str, str], bytes]] = attrs.Factory(list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 204
        if status >= 400:
            return web.json_response({"code": "FAIL", "message": "not now"}, status=status)
        return web.Response(status=status)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield rec
    await runner.cleanup()


def platform_key(sb: Sandbox, serial: str) -> RSAPublicKey:
    if serial == sb.identity.pubkey_id:
        return sb.identity.pubkey_key.public_key()
    (cert,) = [c for c in sb.identity.certificates if c.serial_no == serial]
    key = cert.certificate.public_key()
    assert isinstance(key, RSAPublicKey)
    return key


def open_notification(sb: Sandbox, headers: dict[str, str], body: bytes) -> tuple[Any, Any]:
    """Verify as §B8 says, then decrypt the resource: (envelope, resource)."""
    message = build_response_message(
        headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body
    )
    key = platform_key(sb, headers["Wechatpay-Serial"])
    assert verify_signature(key, message, headers["Wechatpay-Signature"])
    envelope = json.loads(body)
    enc = envelope["resource"]
    assert enc["algorithm"] == "AEAD_AES_256_GCM"
    assert len(enc["nonce"]) == 12
    plain = aead_decrypt(
        sb.credentials.apiv3_key, enc["nonce"], enc["associated_data"], enc["ciphertext"]
    )
    return envelope, json.loads(plain)


async def test_payscore_accept_is_notified_after_a_retry(
    sb: Sandbox, client: WxPayClient, receiver: Receiver
) -> None:
    sb.route_notifications("https://merchant.example", receiver.url)
    receiver.answers = [500, 204]
    await send_json(client, PS_APPLY, payscore_request("NOTIFY1"))
    await sb.accept_payscore_authorization("NOTIFY1", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    await sb.drain_notifications(timeout=5)

    assert [(d.attempt, d.status) for d in sb.deliveries] == [(1, 500), (2, 204)]
    assert sb.deliveries[0].url == "https://merchant.example/payscore/notify"
    assert sb.deliveries[0].target == receiver.url + "/payscore/notify"
    first, second = receiver.received
    assert first[1] == second[1]  # the same envelope, signed afresh
    assert first[0]["Wechatpay-Nonce"] != second[0]["Wechatpay-Nonce"]
    envelope, resource = open_notification(sb, *second)
    assert envelope["event_type"] == "PAYSCORE.USER_OPEN_SERVICE"
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["resource"]["associated_data"] == "payscore"
    assert resource["mch_id"] == sb.identity.mchid
    assert resource["sub_mch_id"] == payscore_request()["sub_mchid"]
    assert resource["user_service_status"] == "USER_OPEN_SERVICE"
    assert resource["openid"] == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert resource["authorization_code"] == "NOTIFY1"
    assert len(resource["openorclose_time"]) == 14
    assert resource["openorclose_time"].isdigit()


async def test_retries_wait_the_scheduled_simulated_seconds(
    sb: Sandbox, client: WxPayClient, receiver: Receiver
) -> None:
    sb.route_notifications("https://merchant.example", receiver.url)
    receiver.answers = [500, 503, 204, 204]
    await send_json(client, PS_APPLY, payscore_request("SPACED"))
    await sb.accept_payscore_authorization("SPACED")
    await sb.drain_notifications()
    assert [d.status for d in sb.deliveries] == [500, 503, 204]  # stops at the first success
    # 15 simulated seconds before each of the two retries, at 0.001 real s per simulated s.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(sb.deliveries)]
    assert all(gap >= 15 * 0.001 for gap in gaps), gaps


async def test_payscore_close_is_notified(
    sb: Sandbox, client: WxPayClient, receiver: Receiver
) -> None:
    sb.route_notifications("https://merchant.example/", receiver.url + "/")
    await send_json(client, PS_APPLY, payscore_request("CLOSE1"))
    await sb.accept_payscore_authorization("CLOSE1")
    await sb.close_payscore_authorization("CLOSE1")
    await sb.drain_notifications()
    events = [open_notification(sb, *r)[0]["event_type"] for r in receiver.received]
    assert sorted(events) == ["PAYSCORE.USER_CLOSE_SERVICE", "PAYSCORE.USER_OPEN_SERVICE"]
    assert {d.target for d in sb.deliveries} == {receiver.url + "/payscore/notify"}


@pytest.mark.parametrize("approve", [True, False])
async def test_h5_review_result_is_notified(
    sb: Sandbox, client: WxPayClient, receiver: Receiver, approve: bool
) -> None:
    sb.route_notifications("https://merchant.example", receiver.url)
    app = document(await send_json(client, H5_CREATE, h5_application()))
    await sb.review_h5_application(app["applyment_id"], approve=approve, reason="Bad site")
    await sb.drain_notifications()
    (delivered,) = receiver.received
    envelope, resource = open_notification(sb, *delivered)
    state = "APPROVED" if approve else "REJECTED"
    assert envelope["event_type"] == f"APPLYMENT_STATE.{state}"
    assert resource["applyment_id"] == app["applyment_id"]
    assert resource["applyment_state"] == state
    assert ("audit_reject_detail" in resource) is not approve


async def test_duplicate_and_signtest_faults(
    sb: Sandbox, client: WxPayClient, receiver: Receiver
) -> None:
    sb.route_notifications("https://merchant.example", receiver.url)
    sb.faults.queue_notification("signtest")
    sb.faults.queue_notification("duplicate")
    await send_json(client, PS_APPLY, payscore_request("FAULTY1"))
    await send_json(client, PS_APPLY, payscore_request("FAULTY2"))
    receiver.answers = [401]  # the probe is refused, as a verifying merchant must
    await sb.accept_payscore_authorization("FAULTY1")
    await sb.drain_notifications()
    await sb.accept_payscore_authorization("FAULTY2")
    await sb.drain_notifications()
    variants = [(d.variant, d.status) for d in sb.deliveries]
    assert variants == [("signtest", 401), ("normal", 204), ("normal", 204), ("duplicate", 204)]
    probe_headers, probe_body = receiver.received[0]
    assert probe_headers["Wechatpay-Signature"].startswith(PROBE_PREFIX)
    assert probe_body == receiver.received[1][1]
    assert receiver.received[2][1] == receiver.received[3][1]  # same id delivered twice


async def test_unrouted_notify_url_is_never_contacted(sb: Sandbox, client: WxPayClient) -> None:
    await send_json(client, PS_APPLY, payscore_request("NOWHERE"))
    await sb.accept_payscore_authorization("NOWHERE")
    await sb.drain_notifications()
    (delivery,) = sb.deliveries
    assert (delivery.target, delivery.status) == (None, None)
    assert delivery.error is not None
    assert "route_notifications" in delivery.error


def test_routes_must_point_at_loopback(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="loopback"):
        sb.route_notifications("https://merchant.example", "http://10.0.0.1:8080")


async def test_gives_up_after_the_schedule() -> None:
    # At 1e-6 real seconds per simulated second, the ~24 h generic schedule takes ~0.09 s.
    rec_calls: list[int] = []

    async def always_fail(request: web.Request) -> web.Response:
        rec_calls.append(1)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/{tail:.*}", always_fail)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with Sandbox.start(time_scale=1e-6) as sb, sb.client() as client:
            sb.route_notifications(
                "https://merchant.example", f"http://127.0.0.1:{runner.addresses[0][1]}"
            )
            app_doc = document(await send_json(client, H5_CREATE, h5_application()))
            await sb.review_h5_application(app_doc["applyment_id"])
            await sb.drain_notifications(timeout=5)
            assert len(sb.deliveries) == len(GENERIC_SCHEDULE) == len(rec_calls)
            assert all(d.status == 500 for d in sb.deliveries)
    finally:
        await runner.cleanup()


def test_documented_schedules() -> None:
    assert list(GENERIC_SCHEDULE[:5]) == [0, 15, 15, 30, 180]
    assert sum(GENERIC_SCHEDULE) == 24 * 3600 + 4 * 60  # "about 24 h 4 min"
    payscore = list(schedule("payscore"))
    assert payscore[:10] == [0, 15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600]
    assert set(payscore[10:]) == {3600}
    assert sum(payscore) <= 3 * 24 * 3600 < sum(payscore) + 3600


async def test_the_library_notification_handler_accepts_them_once(
    sb: Sandbox, client: WxPayClient
) -> None:
    notify = pytest.importorskip("wxpay_async.notify")
    handled: list[Any] = []

    async def handler(notification: Any) -> None:
        handled.append(notification)

    verifier = notify.NotificationVerifier.from_client(client)
    app = web.Application()
    app.router.add_post("/payscore/notify", notify.aiohttp_handler(verifier, handler))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        sb.route_notifications(
            "https://merchant.example", f"http://127.0.0.1:{runner.addresses[0][1]}"
        )
        sb.faults.queue_notification("signtest")
        sb.faults.queue_notification("duplicate")
        for code in ("LIB1", "LIB2"):
            await send_json(client, PS_APPLY, payscore_request(code))
            await sb.accept_payscore_authorization(code)
            await sb.drain_notifications()
    finally:
        await runner.cleanup()
    statuses = [(d.variant, d.status) for d in sb.deliveries]
    assert statuses[0][0] == "signtest"
    assert statuses[0][1] is not None
    assert statuses[0][1] >= 400  # the probe is refused
    assert [s for v, s in statuses[1:]] == [204, 204, 204]  # the duplicate is acknowledged
    assert [n.event_type for n in handled] == ["PAYSCORE.USER_OPEN_SERVICE"] * 2
