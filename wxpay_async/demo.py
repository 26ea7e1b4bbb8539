"""``wxpay-async demo``: the whole mission, end to end, against an embedded sandbox.

The sandbox runs in certificate mode with faults switched on (SYSTEM_ERROR, 429 and answers
lost after processing) while a batch of HK onboardings goes through; every other product is
then exercised once, with a local merchant web app receiving the notifications. Each step is
a *check* on observable state (the sandbox's records, the journal, what the handler saw), and
the command exits 0 only if every check held.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

from . import RetryPolicy, WxPayClient
from .batch import onboard_many
from .cli import at_least_one
from .notify import Notification, NotificationVerifier, aiohttp_handler
from .products import (
    certificates,
    cloudbase,
    h5_permission,
    media,
    payscore_permissions,
)
from .sandbox import DEFAULT_SP_APPID, DEFAULT_SUB_MCHID, Sandbox

__all__ = ["Check", "configure", "run", "run_demo"]

MERCHANT_SITE = "https://merchant.example"


@attrs.frozen
class Check:
    step: str
    ok: bool
    detail: str
    seconds: float


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=at_least_one, default=200, help="HK onboardings in the batch"
    )
    parser.add_argument("--concurrency", type=at_least_one, default=32)
    parser.add_argument("--seed", type=int, default=2026, help="seed of the sandbox's faults")


def run(args: argparse.Namespace) -> int:
    checks = asyncio.run(run_demo(jobs=args.jobs, concurrency=args.concurrency, seed=args.seed))
    print_table(checks)
    return 0 if checks and all(c.ok for c in checks) else 1


def print_table(checks: list[Check], out: Any = None) -> None:
    out = out or sys.stdout
    width = max(len(c.step) for c in checks) if checks else 4
    for c in checks:
        mark = "ok  " if c.ok else "FAIL"
        print(f"{mark}  {c.step:<{width}}  {c.seconds * 1000:7.0f} ms  {c.detail}", file=out)
    passed = sum(c.ok for c in checks)
    print(f"\n{passed}/{len(checks)} checks held", file=out)


def application(i: int, sp_mchid: str) -> dict[str, Any]:
    """A plausible HK onboarding application (plaintext contact: the library encrypts it)."""
    return {
        "sp_appid": DEFAULT_SP_APPID,
        "sp_mchid": sp_mchid,
        "name": f"Harbour Fruit Trading {i} Limited",
        "shortname": f"Harbour Fruit {i}",
        "office_phone": "+85223456789",
        "contact": {
            "name": f"Chan Tai Man {i}",
            "phone": "+85291234567",
            "email": f"owner{i}@fruit.example",
        },
        "business_category": 343,
        "merchant_country_code": "344",
        "merchant_type": "ENTERPRISE",
        "registration_certificate_number": f"7788-{i:05d}",
        "registration_certificate_date": "PERMANENT",
        "business": {"business_type": "ONLINE", "mcc": "5344", "website": "https://fruit.example"},
        "director": {"name": "Chan Tai Man", "number": "A1234567"},
    }


def tiny_png() -> bytes:
    """A valid 1×1 PNG, built here so the demo carries no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x99\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class _MerchantApp:
    """The merchant's own web app: receives notifications through the library's handler."""

    def __init__(self, verifier: NotificationVerifier) -> None:
        self.handled: collections.Counter[str] = collections.Counter()
        self.events: list[Notification] = []
        app = web.Application()
        app.router.add_post("/notify/{kind}", aiohttp_handler(verifier, self.handle))
        self.runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def handle(self, notification: Notification) -> None:
        self.handled[notification.id] += 1
        self.events.append(notification)

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def of_type(self, event_type: str) -> list[Notification]:
        return [n for n in self.events if n.event_type == event_type]


async def run_demo(*, jobs: int = 200, concurrency: int = 32, seed: int = 2026) -> list[Check]:
    """Run every step; a step that raises is a failed check, and the next steps still run."""
    checks: list[Check] = []

    async def step(name: str, body: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        started = time.perf_counter()
        try:
            ok, detail = await body()
        except Exception as exc:  # a demo reports every failure and carries on
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        checks.append(Check(name, ok, detail, time.perf_counter() - started))

    async with Sandbox.start(key_mode="certificate", time_scale=0.001, seed=seed) as sb:
        retry = RetryPolicy(attempts=10, wait_initial=0.005, wait_max=0.05, wait_jitter=0.005)
        async with sb.client(retry=retry) as client:
            merchant = _MerchantApp(NotificationVerifier.from_client(client))
            await merchant.start()
            sb.route_notifications(MERCHANT_SITE, merchant.url)
            try:
                await _mission(sb, client, merchant, step, jobs=jobs, concurrency=concurrency)
            finally:
                await merchant.runner.cleanup()
    return checks


async def _mission(
    sb: Sandbox,
    client: WxPayClient,
    merchant: _MerchantApp,
    step: Callable[[str, Callable[[], Awaitable[tuple[bool, str]]]], Awaitable[None]],
    *,
    jobs: int,
    concurrency: int,
) -> None:
    mchid = client.credentials.mchid

    async def download() -> tuple[bool, str]:
        certs = await certificates.download_platform_certificates(client, region="mainland")
        serials = [c.serial_no for c in certs]
        return sb.wechatpay_serial in serials, f"{len(certs)} certificate(s): {', '.join(serials)}"

    async def batch() -> tuple[bool, str]:
        sb.faults.set_rate("system_error", 0.15)
        sb.faults.set_rate("rate_limited", 0.05)
        sb.faults.set_rate("drop_after", 0.1)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                results = [
                    r
                    async for r in onboard_many(
                        client,
                        (application(i, mchid) for i in range(jobs)),
                        concurrency=concurrency,
                        journal=Path(tmp) / "onboarding.db",
                    )
                ]
        finally:
            sb.faults.clear()
        ok = [r for r in results if r.ok]
        once = all(sb.created_count(r.idempotency_key or "") == 1 for r in ok)
        distinct = len({r.sub_mchid for r in ok})
        faults = collections.Counter(r.fault for r in sb.requests if r.fault)
        injected = ", ".join(f"{k}={v}" for k, v in sorted(faults.items()))
        held = len(ok) == jobs and once and distinct == jobs and sb.submerchant_count == jobs
        return held, (
            f"{len(ok)}/{jobs} onboarded, {distinct} distinct sub-merchants, each key created "
            f"once={once}; faults injected: {injected or 'none'}"
        )

    async def upload() -> tuple[bool, str]:
        uploaded = await media.upload_image(client, "storefront.png", tiny_png())
        return bool(uploaded.media_id), f"media_id {uploaded.media_id[:24]}…"

    async def h5() -> tuple[bool, str]:
        created = await h5_permission.create_application(
            client,
            {
                "sub_mchid": DEFAULT_SUB_MCHID,
                "domains": ["fruit.example"],
                "website_url": "https://fruit.example",
                "website_state": "HAS_LAUNCHED",
                "transaction_limit_type": "NORMAL_LIMIT",
                "notify_url": f"{MERCHANT_SITE}/notify/h5",
            },
        )
        sb.faults.queue("GET /v3/global/merchant/h5/permission/{sub_mchid}", "system_error")
        sb.faults.queue("GET /v3/global/merchant/h5/permission/{sub_mchid}", "rate_limited")
        before = await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
        await sb.review_h5_application(created.applyment_id, approve=True)
        await sb.drain_notifications()
        after = await h5_permission.get_application(client, created.applyment_id)
        state = await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
        events = merchant.of_type("APPLYMENT_STATE.APPROVED")
        handled_once = len(events) == 1 and merchant.handled[events[0].id] == 1
        held = str(after.applyment_state) == "APPROVED" and handled_once
        return held, (
            f"applyment {created.applyment_id}: {created.applyment_state} → "
            f"{after.applyment_state}; authorization {before.authorization_state} → "
            f"{state.authorization_state}; review notification handled once={handled_once}"
        )

    async def payscore() -> tuple[bool, str]:
        code = "DEMO-AUTH-0001"
        ids = {"service_id": "500001", "channel_id": mchid, "sub_mchid": DEFAULT_SUB_MCHID}
        token = await payscore_permissions.apply_permissions(
            client,
            {
                **ids,
                "appid": DEFAULT_SP_APPID,
                "authorization_code": code,
                "notify_url": f"{MERCHANT_SITE}/notify/payscore",
            },
        )
        launch = payscore_permissions.miniprogram_launch_params(token)
        sb.faults.queue_notification("signtest")  # a forged copy arrives first
        sb.faults.queue_notification("duplicate")  # and the real one twice
        await sb.accept_payscore_authorization(code)
        await sb.drain_notifications()
        opened = await payscore_permissions.get_by_authorization_code(client, code, **ids)
        await payscore_permissions.terminate_by_authorization_code(
            client, code, {**ids, "reason": "demo finished"}
        )
        closed = await payscore_permissions.get_by_authorization_code(client, code, **ids)
        events = merchant.of_type("PAYSCORE.USER_OPEN_SERVICE")
        handled_once = len(events) == 1 and merchant.handled[events[0].id] == 1
        # The forged copy (a WECHATPAY/SIGNTEST/ signature) must have been refused: accepted,
        # it would be handled under the real notification's id, and the real one skipped.
        probes = [d for d in sb.deliveries if d.variant == "signtest"]
        refused = sum(1 for d in probes if d.status is not None and d.status >= 400)
        held = (
            bool(probes)
            and refused == len(probes)
            and handled_once
            and str(opened.authorization_state) == "AVAILABLE"
            and str(closed.authorization_state) != "AVAILABLE"
        )
        return held, (
            f"token expires {token.expires_at:%H:%M:%S}Z, launch {sorted(launch)}; "
            f"open-service handled once={handled_once} ({refused} of {len(probes)} forged"
            " deliveries refused); "
            f"{opened.authorization_state} → terminated → {closed.authorization_state}"
        )

    async def cloud() -> tuple[bool, str]:
        sb.expire_access_token()  # the first call meets 42001 and refreshes the token once
        result = await cloudbase.get_wechatpay_auth(client, "bind", mchid)
        listing = await cloudbase.list_wechatpay_merchants(client)
        return result.errcode == 0, (
            f"bind → errcode {result.errcode} {result.errmsg!r}; "
            f"{len(listing.list)} merchant(s) listed"
        )

    await step("platform certificates", download)
    await step(f"HK onboarding ×{jobs} under faults", batch)
    await step("image upload", upload)
    await step("H5 permission + review notification", h5)
    await step("PayScore authorization lifecycle", payscore)
    await step("cloud-base authorization", cloud)
