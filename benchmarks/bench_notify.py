"""Notification throughput: verify + decrypt per second, against the bare RSA verification floor.

A pool of distinct notifications is signed and encrypted once (RSA-2048, AES-256-GCM, the
PayScore resource shape), then timed:

* ``rsa_verify (bare)``: ``public_key.verify`` over the same signed messages, nothing else;
  the issue's floor.
* ``rsa_verify (recover-and-compare)``: the same check done the cheaper way
  (``_floor.floor_verify``: recover the padded digest and compare), which is what ``parse``
  and the hand-written minimum use; a stricter floor than the issue's.
* ``hand-written minimum``: what any CPython verifier must do, and nothing else: the
  recover-and-compare RSA verify, ``json.loads`` of the envelope, Base64 + AES-GCM of the
  resource (cipher built once), ``json.loads`` of the plaintext; no header parsing, no
  window, no checks, no model.
  It bounds how close to the bare verify a notification can get without leaving CPython.
* ``parse``: ``NotificationVerifier.parse`` with a ``PublicKeyTrust`` (header checks, window,
  RSA verify, JSON, AES-GCM, the typed resource model); ratio to the bare floor.
* ``parse, resource left a dict``: the same without the typed model (the converter's share).
* ``handle_notification + MemoryInbox``: parse, claim, run a no-op handler, record done (what
  the aiohttp handler does per delivery, minus HTTP); ratio to the bare floor.
* ``MemoryInbox.process`` / ``SqliteInbox.process``: the inbox alone on parsed notifications
  (SQLite: WAL, ``synchronous=FULL``, one worker thread, a durable commit per claim and per
  completion); SQLite's ratio is to ``parse``: below 1, the store is the bottleneck.

Each figure is the median of three interleaved rounds, and each ratio the median of the
three per-round ratios. ``python -m benchmarks.bench_notify [--quick]``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wxpay_async.crypto import aead_encrypt, build_response_message, new_nonce, sign
from wxpay_async.notify import (
    MemoryInbox,
    Notification,
    NotificationVerifier,
    SqliteInbox,
    handle_notification,
)
from wxpay_async.trust import PublicKeyTrust

from ._floor import floor_verify
from ._table import Row, main_with_quick

__all__ = ["run"]

BENCH = "notify"
KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
APIV3_KEY = b"0123456789abcdefghijABCDEFGHIJ01"
RESOURCE = {
    "appid": "wxd678efh567hg6787",
    "mch_id": "1230000109",
    "sub_mch_id": "1900000109",
    "channel_id": "1900000108",
    "service_id": "500001",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "user_service_status": "USER_OPEN_SERVICE",
    "openorclose_time": "20180225112233",
    "authorization_code": "1275b0ee5e484e54b4c19e8e9c2ce0f4",
}


@attrs.frozen
class Signed:
    headers: dict[str, str]
    body: bytes
    message: bytes
    signature: bytes


def make_pool(private_key: rsa.RSAPrivateKey, size: int, now: int) -> list[Signed]:
    pool = []
    for _ in range(size):
        nonce = new_nonce(12)
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": "2024-05-20T13:29:35+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "PAYSCORE.USER_OPEN_SERVICE",
            "summary": "授权成功",
            "resource": {
                "original_type": "payscore",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": aead_encrypt(
                    APIV3_KEY, nonce, "payscore", json.dumps(RESOURCE).encode()
                ),
                "associated_data": "payscore",
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        ts, header_nonce = str(now), new_nonce()
        message = build_response_message(ts, header_nonce, body)
        signature = sign(private_key, message)
        headers = {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": header_nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": KEY_ID,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Request-ID": uuid.uuid4().hex,
        }
        pool.append(Signed(headers, body, message, base64.b64decode(signature)))
    return pool


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


async def timed(n: int, step: Callable[[int], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for i in range(n):
        await step(i)
    return rate(n, time.perf_counter() - started)


async def measure(quick: bool) -> list[Row]:
    n = 300 if quick else 3000
    n_sqlite = 100 if quick else 1000
    now = int(time.time())
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = private_key.public_key()
    pool = make_pool(private_key, 100, now)
    verifier = NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=PublicKeyTrust(KEY_ID, public_key), clock=lambda: float(now)
    )
    untyped = NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=PublicKeyTrust(KEY_ID, public_key), clock=lambda: float(now)
    )
    untyped.register("PAYSCORE.USER_OPEN_SERVICE", dict)  # no model: isolates the converter cost
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    async def bare(i: int) -> None:
        item = pool[i % len(pool)]
        public_key.verify(item.signature, item.message, pkcs1, sha256)

    async def recover(i: int) -> None:
        item = pool[i % len(pool)]
        floor_verify(public_key, item.signature, item.message)

    aesgcm = AESGCM(APIV3_KEY)

    async def minimum(i: int) -> None:
        item = pool[i % len(pool)]
        floor_verify(public_key, item.signature, item.message)
        resource = json.loads(item.body)["resource"]
        json.loads(
            aesgcm.decrypt(
                resource["nonce"].encode(),
                base64.b64decode(resource["ciphertext"]),
                resource["associated_data"].encode(),
            )
        )

    async def parse(i: int) -> Notification:
        item = pool[i % len(pool)]
        return await verifier.parse(item.headers, item.body)

    async def parse_untyped(i: int) -> Notification:
        item = pool[i % len(pool)]
        return await untyped.parse(item.headers, item.body)

    async def noop(_n: Notification) -> None:
        return None

    inboxes: list[MemoryInbox] = []

    async def handle(i: int) -> None:
        if i % len(pool) == 0:  # a fresh inbox per pass: every delivery is new, none duplicate
            inboxes.append(MemoryInbox())
        item = pool[i % len(pool)]
        status, _ = await handle_notification(
            verifier, noop, item.headers, item.body, inbox=inboxes[-1]
        )
        if status != 204:
            raise RuntimeError(f"unexpected status {status}")

    parsed = await parse(0)
    fresh = [attrs.evolve(parsed, id=uuid.uuid4().hex) for _ in range(max(n, n_sqlite) * 3)]
    memory = MemoryInbox()
    counter = iter(range(len(fresh)))

    async def memory_process(_i: int) -> None:
        await memory.process(fresh[next(counter)], noop)

    kinds = ("bare", "recover", "minimum", "parse", "untyped", "handle", "mem", "sql")
    results: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteInbox(Path(tmp) / "inbox.db")
        sql_counter = iter(range(len(fresh)))

        async def sqlite_process(_i: int) -> None:
            await sqlite.process(fresh[next(sql_counter)], noop)

        await sqlite.process(attrs.evolve(parsed, id="warm-up"), noop)
        for _ in range(3):  # interleaved, so drift on a shared machine hits every figure
            results["bare"].append(await timed(n, bare))
            results["recover"].append(await timed(n, recover))
            results["minimum"].append(await timed(n, minimum))
            results["parse"].append(await timed(n, parse))
            results["untyped"].append(await timed(n, parse_untyped))
            results["handle"].append(await timed(n, handle))
            results["mem"].append(await timed(n, memory_process))
            results["sql"].append(await timed(n_sqlite, sqlite_process))
        await sqlite.aclose()

    med = {k: statistics.median(v) for k, v in results.items()}
    label = {
        "bare": "rsa_verify (bare)",
        "recover": "rsa_verify (recover-and-compare)",
        "minimum": "hand-written minimum (verify+JSON+AES)",
        "parse": "parse (verify+decrypt+model)",
        "untyped": "parse, resource left a dict",
        "handle": "handle_notification + MemoryInbox",
        "mem": "MemoryInbox.process",
        "sql": "SqliteInbox.process",
    }

    def row(kind: str, to: str | None = None) -> Row:
        """ops/s of ``kind``, with its ratio to ``to``: the median of the per-round ratios."""
        plain = Row(benchmark=BENCH, metric=label[kind], value=med[kind], unit="ops/s")
        if to is None:
            return plain
        paired = statistics.median(a / b for a, b in zip(results[kind], results[to], strict=True))
        return attrs.evolve(plain, ratio_to=label[to], ratio=paired)

    return [
        row("bare"),
        row("recover", "bare"),
        row("minimum", "bare"),
        row("parse", "bare"),
        row("parse", "recover"),
        row("parse", "minimum"),
        row("untyped", "bare"),
        row("handle", "bare"),
        row("mem"),
        row("sql", "parse"),
    ]


def run(quick: bool = False) -> list[Row]:
    """Measure and return the rows (see the module docstring)."""
    return asyncio.run(measure(quick))


if __name__ == "__main__":
    main_with_quick("bench_notify", run, "smaller N, for a smoke run")
