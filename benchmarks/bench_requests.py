"""Signed request throughput: wxpay_async vs wechatpayv3 vs a hand-written aiohttp floor.

N = 2,000 signed GETs of ``/v3/global/merchant/h5/permission/{sub_mchid}`` (H5 authorization
state) per client at concurrency 1, 16 and 64, against one local server in a separate process
(``_servers.py``), public-key trust mode. Every client signs every request and RSA-verifies
every answer.

* ``wxpay_async``: ``h5_permission.get_authorization_state(client, sub_mchid)``, what users call
  (validation, signing, verification, a typed answer model).
* ``wechatpayv3``: ``AsyncWeChatPay`` (httpx) with its gateway attribute pointed at the local
  server (it has no H5 permission function, so its generic ``_core.request(path)``, which its
  product functions call, plus ``json.loads`` of the text, is used). Its httpx pool is its
  default: it keeps at most 20 idle connections, so at concurrency 64 some calls reconnect
  inside the clock; a 64-connection pool was tried and measured slower (httpcore scans its
  connections for every request).
* ``floor``: ``_floor.py``, sign + aiohttp GET + verify and nothing else.

The client runs in this process pinned to one CPU, the server pinned to another (``--no-pin``
to let them float); client CPU per request is ``time.process_time()`` over the timed calls ÷
their number. The clients take turns of 250 calls (at least 8 per worker) within one run so
that background load hits them alike, each turn starting after a full garbage collection;
each concurrency runs 3 times; the table shows medians (p99: nearest rank), and each ratio is
the median of the per-run ratios. A last section, the client unpinned (the server stays on
its CPU), compares signing on the event loop with signing in one thread
(``WxPayClient(sign_executor=...)``, and the same in the floor).

``python -m benchmarks.bench_requests [--quick] [--no-pin] [--profile]``; ``--profile``
prints a pyinstrument profile of wxpay_async's client path instead of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import math
import os
import statistics
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs

from ._floor import floor_client
from ._servers import ChildServer, signed_server
from ._srv_identity import Identity
from ._table import Row, machine, print_rows

__all__ = ["run"]

SUB_MCHID = "1900000110"
PATH = f"/v3/global/merchant/h5/permission/{SUB_MCHID}"
BODY = json.dumps({"sub_mchid": SUB_MCHID, "authorization_state": "AUTHORIZED"}).encode()
CONCURRENCY = (1, 16, 64)

Call = Callable[[], Awaitable[None]]
ClientFactory = Callable[[Identity, str], AbstractAsyncContextManager[Call]]


# -- the clients -----------------------------------------------------------------------------


@asynccontextmanager
async def wxpay_async_client(
    identity: Identity, base_url: str, *, sign_threads: int = 0
) -> AsyncIterator[Call]:
    """The product coroutine users call, on a client in public-key mode.

    ``sign_threads``: sign in a thread pool of that size (``WxPayClient(sign_executor=...)``).
    """
    from wxpay_async import WxPayClient
    from wxpay_async.products import h5_permission

    credentials, trust, hosts = identity.client_options(base_url)
    executor = ThreadPoolExecutor(max_workers=sign_threads) if sign_threads else None
    try:
        async with WxPayClient(
            credentials, trust=trust, hosts=hosts, sign_executor=executor
        ) as client:

            async def call() -> None:
                state = await h5_permission.get_authorization_state(client, SUB_MCHID)
                if state.sub_mchid != SUB_MCHID:
                    raise RuntimeError("wxpay_async: unexpected answer")

            yield call
    finally:
        if executor is not None:
            executor.shutdown()


@asynccontextmanager
async def wechatpayv3_client(identity: Identity, base_url: str) -> AsyncIterator[Call]:
    """wechatpayv3's async client; its hard-coded gateway is replaced by the local server."""
    from wechatpayv3 import WeChatPayType  # type: ignore[import-untyped]
    from wechatpayv3.async_ import AsyncWeChatPay  # type: ignore[import-untyped]

    wxpay = AsyncWeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=identity.mchid,
        private_key=identity.merchant_private_pem,
        cert_serial_no=identity.serial_no,
        appid="wxd678efh567hg6787",
        apiv3_key=identity.apiv3_key,
        public_key=identity.platform_public_pem,
        public_key_id=identity.public_key_id,
    )
    core = wxpay._core
    if not hasattr(core, "_gate_way"):  # renamed: setting it would leave the real host in use
        raise RuntimeError("this wechatpayv3 has no AsyncCore._gate_way; update the benchmark")
    core._gate_way = base_url  # no public option for the host
    # Its httpx client keeps its default pool: at most 20 idle connections (httpcore closes
    # every connection that goes idle once more than 20 exist), so at concurrency 64 some calls
    # open a new connection inside the clock. A 64-connection pool measured slower still (149
    # against 255 req/s at c=64: httpcore scans its connections for every request), so the
    # default is its best showing here.
    async with wxpay:

        async def call() -> None:
            code, text = await wxpay._core.request(PATH)
            if code != 200 or json.loads(text)["sub_mchid"] != SUB_MCHID:
                raise RuntimeError(f"wechatpayv3: unexpected answer {code}")

        yield call


def _floor(identity: Identity, base_url: str) -> AbstractAsyncContextManager[Call]:
    return floor_client(identity, base_url, PATH)


#: Signing threads in the offload comparison: one spare core's worth.
SIGN_THREADS = 1


def _floor_threads(identity: Identity, base_url: str) -> AbstractAsyncContextManager[Call]:
    return floor_client(identity, base_url, PATH, sign_threads=SIGN_THREADS)


def _wxpay_async_threads(identity: Identity, base_url: str) -> AbstractAsyncContextManager[Call]:
    return wxpay_async_client(identity, base_url, sign_threads=SIGN_THREADS)


CLIENTS: dict[str, ClientFactory] = {
    "wxpay_async": wxpay_async_client,
    "wechatpayv3": wechatpayv3_client,
    "floor": _floor,
}
#: The unpinned comparison of signing on the event loop with signing in a thread.
OFFLOAD_CLIENTS: dict[str, ClientFactory] = {
    "wxpay_async": wxpay_async_client,
    "wxpay_async, sign_executor": _wxpay_async_threads,
    "floor": _floor,
    "floor, sign in a thread": _floor_threads,
}
OFFLOAD_CONCURRENCY = (1, 64)


# -- measuring -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


class _Tally:
    """What one client accumulated over its turns in a run."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.wall = 0.0
        self.cpu = 0.0

    def sample(self) -> Sample:
        n = len(self.latencies)
        ordered = sorted(self.latencies)
        return Sample(
            rps=n / self.wall,
            p50_ms=statistics.median(ordered) * 1e3,
            p99_ms=ordered[math.ceil(n * 0.99) - 1] * 1e3,  # nearest rank
            cpu_us=self.cpu / n * 1e6,
        )


async def _turn(call: Call, n: int, concurrency: int, tally: _Tally) -> None:
    """``n`` calls by ``concurrency`` workers, timed and added to ``tally``."""
    latencies = [0.0] * n
    jobs = iter(range(n))

    async def worker() -> None:
        for i in jobs:
            started = time.perf_counter()
            await call()
            latencies[i] = time.perf_counter() - started

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.wall += time.perf_counter() - wall0
    tally.cpu += time.process_time() - cpu0
    tally.latencies += latencies


async def interleaved(
    factories: dict[str, ClientFactory],
    identity: Identity,
    url: str,
    *,
    n: int,
    concurrency: int,
    turn: int,
) -> dict[str, Sample]:
    """``n`` calls per client, the clients taking turns of ``turn`` calls each.

    Turns of a fraction of a second put every client through the same background load (on a
    shared machine other processes come and go), so ratios measured in one run stay meaningful.
    """
    async with contextlib.AsyncExitStack() as stack:
        calls = {
            name: await stack.enter_async_context(factory(identity, url))
            for name, factory in factories.items()
        }
        for call in calls.values():  # open every connection before the clock starts
            for _ in range(2):
                await asyncio.gather(*(call() for _ in range(concurrency)))
        tallies = {name: _Tally() for name in calls}
        done = 0
        while done < n:
            size = min(turn, n - done)
            for name, call in calls.items():
                gc.collect()  # no client pays for another's garbage
                await _turn(call, size, concurrency, tallies[name])
            done += size
    return {name: tally.sample() for name, tally in tallies.items()}


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin this process's main thread (and threads it starts) to ``cpu`` for the block."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpus() -> tuple[int | None, int | None]:
    """(client CPU, server CPU), or no pinning on a single-CPU machine."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    available = sorted(os.sched_getaffinity(0))
    return (available[0], available[1]) if len(available) >= 2 else (None, None)


def server(identity: Identity, cpu: int | None) -> ChildServer:
    """The signed-answer server for ``PATH``, in its own process."""
    return signed_server(
        private_key_pem=identity.platform_private_pem,
        key_id=identity.public_key_id,
        body=BODY,
        path_prefix=PATH.rsplit("/", 1)[0] + "/",
        cpu=cpu,
    )


def _server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_stats", timeout=5) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


# -- reporting -------------------------------------------------------------------------------


def _median(values: Iterable[float]) -> float:
    return statistics.median(values)


def _rows(concurrency: int, runs: list[dict[str, Sample]]) -> list[Row]:
    """Median figures per client; each ratio is the median of the per-run (paired) ratios."""
    bench = f"requests c={concurrency}"
    others = [name for name in ("floor", "wechatpayv3") if name in runs[0]]

    def med(name: str, field: str) -> float:
        return _median(getattr(run[name], field) for run in runs)

    def row(name: str, label: str, field: str, unit: str, ratio_to: str = "") -> Row:
        ratio = None
        if ratio_to:
            ratio = _median(
                getattr(run[name], field) / getattr(run[ratio_to], field) for run in runs
            )
        return Row(benchmark=bench, metric=f"{name} {label}", value=med(name, field), unit=unit,
                   ratio_to=ratio_to, ratio=ratio)  # fmt: skip

    ours = "wxpay_async"
    rows = [row(ours, "req/s", "rps", "req/s", other) for other in others]
    rows += [
        row(ours, "p50", "p50_ms", "ms", "floor"),
        row(ours, "p99", "p99_ms", "ms", "floor"),
    ]
    rows += [row(ours, "CPU/req", "cpu_us", "us", other) for other in others]
    for name in others:
        rows += [
            row(name, "req/s", "rps", "req/s"),
            row(name, "p50", "p50_ms", "ms"),
            row(name, "p99", "p99_ms", "ms"),
            row(name, "CPU/req", "cpu_us", "us"),
        ]
    return rows


def _clients() -> dict[str, ClientFactory]:
    """``CLIENTS`` without wechatpayv3 when its async client cannot be imported."""
    try:
        importlib.import_module("wechatpayv3.async_.core")  # needs its "async" extra
    except ImportError as exc:
        print(
            f"bench_requests: wechatpayv3's async client is unavailable ({exc}); "
            "pip install 'wechatpayv3[async]' to compare with it. Skipped."
        )
        return {name: factory for name, factory in CLIENTS.items() if name != "wechatpayv3"}
    return CLIENTS


def _offload_rows(concurrency: int, runs: list[dict[str, Sample]]) -> list[Row]:
    bench = f"sign offload c={concurrency}"

    def med(name: str, field: str) -> float:
        return _median(getattr(run[name], field) for run in runs)

    def ratio(name: str, base: str, field: str) -> float:
        return _median(getattr(run[name], field) / getattr(run[base], field) for run in runs)

    rows: list[Row] = []
    for base, threaded in (
        ("wxpay_async", "wxpay_async, sign_executor"),
        ("floor", "floor, sign in a thread"),
    ):
        rows += [
            Row(benchmark=bench, metric=f"{base} req/s", value=med(base, "rps"), unit="req/s"),
            Row(benchmark=bench, metric=f"{threaded} req/s", value=med(threaded, "rps"),
                unit="req/s", ratio_to="inline", ratio=ratio(threaded, base, "rps")),
            Row(benchmark=bench, metric=f"{threaded} p50", value=med(threaded, "p50_ms"),
                unit="ms", ratio_to="inline", ratio=ratio(threaded, base, "p50_ms")),
            Row(benchmark=bench, metric=f"{threaded} CPU/req", value=med(threaded, "cpu_us"),
                unit="us", ratio_to="inline", ratio=ratio(threaded, base, "cpu_us")),
        ]  # fmt: skip
    return rows


def _runs(
    factories: dict[str, ClientFactory],
    identity: Identity,
    url: str,
    *,
    concurrency: int,
    n: int,
    repeats: int,
    turn: int,
) -> list[dict[str, Sample]]:
    """``repeats`` interleaved runs, the clients' order rotated from one run to the next."""
    runs = []
    names = list(factories)
    for repeat in range(repeats):
        shift = repeat % len(names)
        order = {name: factories[name] for name in names[shift:] + names[:shift]}
        runs.append(
            asyncio.run(interleaved(order, identity, url, n=n, concurrency=concurrency, turn=turn))
        )
    return runs


def _turn_size(turn: int, concurrency: int) -> int:
    """At least 8 calls per worker per turn: each turn ramps up and down once."""
    return max(turn, 8 * concurrency)


def run(quick: bool = False, *, pin: bool = True) -> list[Row]:
    """Every client at every concurrency, 3 interleaved runs each; median rows."""
    n, repeats, turn = (200, 1, 100) if quick else (2000, 3, 250)
    identity = Identity.generate()
    client_cpu, server_cpu = cpus() if pin else (None, None)
    clients = _clients()
    rows: list[Row] = []
    with server(identity, server_cpu) as srv:
        before = _server_stats(srv.url)
        with pinned(client_cpu):
            for concurrency in CONCURRENCY:
                runs = _runs(
                    clients, identity, srv.url, concurrency=concurrency, n=n,
                    repeats=repeats, turn=_turn_size(turn, concurrency),
                )  # fmt: skip
                rows += _rows(concurrency, runs)
        # The client unpinned (the server stays on its CPU): can a signing thread use the
        # client's share of the second CPU?
        for concurrency in OFFLOAD_CONCURRENCY:
            runs = _runs(
                OFFLOAD_CLIENTS, identity, srv.url, concurrency=concurrency, n=n,
                repeats=repeats, turn=_turn_size(turn, concurrency),
            )  # fmt: skip
            rows += _offload_rows(concurrency, runs)
        after = _server_stats(srv.url)
    answers = max(1, after["requests"] - before["requests"])
    rows.append(
        Row(
            benchmark="requests server",
            metric="server CPU/answer",
            value=(after["cpu_s"] - before["cpu_s"]) / answers * 1e6,
            unit="us",
        )
    )
    return rows


# -- profiling -------------------------------------------------------------------------------


def profile(n: int = 4000, concurrency: int = 16) -> None:
    """Print a pyinstrument profile of wxpay_async's client path (server as in ``run``)."""
    from pyinstrument import Profiler

    identity = Identity.generate()
    client_cpu, server_cpu = cpus()
    with server(identity, server_cpu) as srv, pinned(client_cpu):

        async def body() -> Profiler:
            async with wxpay_async_client(identity, srv.url) as call:
                await _turn(call, 200, concurrency, _Tally())  # warm up outside the profile
                profiler = Profiler(interval=0.0005, async_mode="disabled")
                profiler.start()
                await _turn(call, n, concurrency, _Tally())
                profiler.stop()
            return profiler

        result = asyncio.run(body())
    print(result.output_text(unicode=True, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_requests")
    parser.add_argument("--quick", action="store_true", help="N=200, one run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and server")
    parser.add_argument("--profile", action="store_true", help="profile wxpay_async instead")
    args = parser.parse_args()
    if args.profile:
        profile()
        return
    rows = run(quick=args.quick, pin=not args.no_pin)
    print(machine())
    print_rows(rows)


if __name__ == "__main__":
    main()
