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
import urllib.request
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
    Outcome,
    Spec,
    application,
    onboard_command,
    onboard_in_child,
    onboard_in_children,
    onboard_server,
    write_jobs,
    write_merchant_toml,
)
from benchmarks.bench_instructions import per_object
from wxpay_async import WxPayClient
from wxpay_async.products import hk_merchants

LATENCY = 0.2


@pytest.fixture(scope="module")
def identity() -> Identity:
    return Identity.generate()


def _client(identity: Identity, url: str) -> WxPayClient:
    credentials, trust, hosts = identity.client_options(url)
    return WxPayClient(credentials, trust=trust, hosts=hosts)


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
    assert "wechatpay-signature" in first
    assert "wechatpay-signature" not in second
    assert json.loads(second_body)["requests"] == 1


def _requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_stats", timeout=5) as response:
        return int(json.loads(response.read())["requests"])


async def test_the_hand_written_floor_sends_each_job_once(identity: Identity) -> None:
    with onboard_server(identity, 0.0) as server:
        wall, cpu, loop_cpu = await run_floor(identity, server.url, range(4), 2, application)
        assert _requests(server.url) == 4
    assert min(wall, cpu, loop_cpu) > 0


def test_batch_children_send_every_job_once(identity: Identity, tmp_path: Path) -> None:
    fields = {field.name: getattr(identity, field.name) for field in attrs.fields(Identity)}
    sent = []
    with onboard_server(identity, 0.01) as server:

        def run(name: str, shards: int = 1, **changes: Any) -> Outcome:
            spec = Spec(
                jobs=6, concurrency=4, journal=str(tmp_path / name), url=server.url, identity=fields
            )
            before = _requests(server.url)
            outcome = onboard_in_children(attrs.evolve(spec, **changes), shards)
            sent.append(_requests(server.url) - before)
            return outcome

        ours = run("one.db")
        floor = run("floor.db", floor=True)
        # Two processes on one journal file, each taking every other job.
        split = run("split.db", shards=2, pool=2)
    assert (ours.jobs, ours.ok, ours.first_error) == (6, 6, "")
    assert (split.jobs, split.ok, split.first_error) == (6, 6, "")
    assert floor.jobs == 6
    assert sent == [6, 6, 6]  # no job lost, none sent twice, by either client


def test_the_onboard_command_in_two_processes_sends_every_job_once(
    identity: Identity, tmp_path: Path
) -> None:
    with onboard_server(identity, 0.01) as server:
        config = write_merchant_toml(identity, server.url, tmp_path / "merchant")
        jobs = write_jobs(tmp_path / "jobs.jsonl", 7, identity.mchid)
        outcome = onboard_command(config, jobs, str(tmp_path / "j.db"), 2)
        assert _requests(server.url) == 7
    assert (outcome.jobs, outcome.ok, outcome.first_error) == (7, 7, "")
    assert min(outcome.wall_s, outcome.cpu_s) > 0


def test_a_child_that_cannot_start_is_reported(identity: Identity, tmp_path: Path) -> None:
    # An identity the child cannot load: it fails during set-up, before "ready".
    spec = Spec(
        jobs=2,
        concurrency=1,
        journal=str(tmp_path / "j.db"),
        url="http://127.0.0.1:9",
        identity={"mchid": "1"},
    )
    with pytest.raises(RuntimeError, match="failed to start"):
        onboard_in_child(spec)


def test_a_wrapped_child_runs_the_batch(identity: Identity, tmp_path: Path) -> None:
    # How bench_instructions runs a child under valgrind; ``env`` stands in for it here.
    with onboard_server(identity, 0.01) as server:
        spec = Spec(
            jobs=3,
            concurrency=2,
            journal=str(tmp_path / "j.db"),
            url=server.url,
            identity=attrs.asdict(identity),
        )
        outcome = onboard_in_child(spec, wrapper=["env", "WRAPPED=1"])
        assert _requests(server.url) == 3
    assert (outcome.jobs, outcome.ok) == (3, 3)


def test_callgrind_costs_are_summed_per_object_without_counting_calls_twice(
    tmp_path: Path,
) -> None:
    # Names compressed as "(n) name" then "(n)"; the line after calls= is a call's inclusive
    # cost, already counted where the callee ran; "+2" and "*" are compressed positions.
    data = tmp_path / "callgrind.out"
    data.write_text(
        "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n"
        "ob=(1) /lib/libpython3.11.so\nfl=(1) ceval.c\nfn=(1) eval\n10 100\n+2 50\n"
        "cob=(2) /site-packages/cryptography/hazmat/bindings/_rust.abi3.so\ncfn=(2) sign\n"
        "calls=3 0\n12 9000\n"
        "ob=(2)\nfl=(2) ???\nfn=(2)\n0 7000\n* 1000\n"
        "ob=(1)\nfn=(1)\n14 5\ntotals: 8155\n"
    )
    assert per_object(data) == {
        "/lib/libpython3.11.so": 155,
        "/site-packages/cryptography/hazmat/bindings/_rust.abi3.so": 8000,
    }
