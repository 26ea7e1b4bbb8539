"""The benchmark harness stays runnable between benchmark runs.

Nothing here times anything (figures belong to ``python -m benchmarks``): these tests check
that the minimal server answers the way WeChat Pay would (the library's own client accepts its
signed answers), that it keeps HTTP/1.1 answer order under its latency, and that both batch
clients the benchmark compares (``onboard_many`` in child processes, and the hand-written floor)
complete against it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest

from benchmarks._batch_floor import run_floor
from benchmarks._srv_identity import Identity
from benchmarks.bench_batch import (
    ANSWER,
    PATH,
    Spec,
    application,
    onboard_in_child,
    onboard_in_children,
    onboard_server,
)
from wxpay_async import Hosts, MerchantCredentials, PublicKeyTrust, WxPayClient
from wxpay_async.products import hk_merchants

LATENCY = 0.2


@pytest.fixture(scope="module")
def identity() -> Identity:
    return Identity.generate()


def _client(identity: Identity, url: str) -> WxPayClient:
    credentials = MerchantCredentials(
        mchid=identity.mchid,
        serial_no=identity.serial_no,
        private_key=identity.merchant_private_pem,
        apiv3_key=identity.apiv3_key,
    )
    trust = PublicKeyTrust(identity.public_key_id, identity.platform_public_pem)
    return WxPayClient(credentials, trust=trust, hosts=Hosts.single(url))


async def _read_answer(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")[1:]
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    body = await reader.readexactly(int(headers["content-length"]))
    return headers, body


async def test_the_library_accepts_the_minimal_servers_signed_answer(identity: Identity) -> None:
    with onboard_server(identity, 0.0) as server:
        async with _client(identity, server.url) as client:
            created = await hk_merchants.create_submerchant(client, application(1, identity.mchid))
    assert created.sub_mchid == json.loads(ANSWER)["sub_mchid"]


async def test_answers_wait_the_latency_and_keep_request_order(identity: Identity) -> None:
    body = b'{"x":1}'
    post = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    stats = b"GET /_stats HTTP/1.1\r\nHost: x\r\n\r\n"
    with onboard_server(identity, LATENCY) as server:
        address = urlsplit(server.url)
        assert address.hostname is not None and address.port is not None
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        try:
            started = time.monotonic()
            # Pipelined: the instant /_stats answer must not overtake the delayed POST answer.
            writer.write(post + stats)
            first, first_body = await _read_answer(reader)
            waited = time.monotonic() - started
            second, second_body = await _read_answer(reader)
        finally:
            writer.close()
    assert waited >= LATENCY * 0.9
    assert first_body == ANSWER
    assert first["wechatpay-serial"] == identity.public_key_id
    assert "wechatpay-signature" in first and "wechatpay-signature" not in second
    assert json.loads(second_body)["requests"] == 1


async def test_the_hand_written_floor_completes(identity: Identity) -> None:
    with onboard_server(identity, 0.0) as server:
        wall, cpu, loop_cpu = await run_floor(identity, server.url, range(4), 2, application)
    assert wall > 0 and cpu > 0 and loop_cpu > 0


def test_batch_children_onboard_every_job(identity: Identity, tmp_path: Path) -> None:
    fields = {field.name: getattr(identity, field.name) for field in attrs.fields(Identity)}
    with onboard_server(identity, 0.01) as server:

        def spec(name: str, **changes: Any) -> Spec:
            base = Spec(
                jobs=6, concurrency=4, journal=str(tmp_path / name), url=server.url, identity=fields
            )
            return attrs.evolve(base, **changes)

        ours = onboard_in_child(spec("one.db"))
        floor = onboard_in_child(spec("floor.db", floor=True))
        split = onboard_in_children(spec("split.db", pool=2), 2)
    assert (ours.jobs, ours.ok, ours.first_error) == (6, 6, "")
    assert (floor.jobs, floor.ok) == (6, 6)
    # Two processes share the journal and split the jobs: every job once, none twice.
    assert (split.jobs, split.ok, split.first_error) == (6, 6, "")
    assert split.ended >= split.started
