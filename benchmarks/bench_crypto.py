"""The crypto floor: RSA-2048 SHA256-PKCS#1 v1.5 signs and verifies per second, 1 and 2 threads.

Every v3 request costs one private-key signature and every answer one public-key verify, so
these rates bound what any client can do per CPU. ``cryptography`` releases the GIL inside
OpenSSL, so a second thread should nearly double the rate on a machine with a free second CPU;
the ``2 threads`` rows show how close this machine gets (its other load included).

``sign beside busy Python``: one thread signs while the main thread runs Python without
pause, the worst case of an event loop under a large batch (a real loop also lets go of the
GIL at each socket call and poll). After each signature the signing thread must take the GIL
back to return, and a thread that never blocks lets go of it only when the interpreter's
switch interval (5 ms) runs out, so signatures leave the thread at about one per switch
interval instead of thousands per second. This is why moving signatures to a thread
(``WxPayClient(sign_executor=...)``) does not speed up a CPU-bound batch.

``python -m benchmarks.bench_crypto [--quick]``
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._table import Row, main_with_quick

__all__ = ["run"]

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
#: The shape of a signed GET: method, path, timestamp, nonce, empty body.
MESSAGE = b"GET\n/v3/global/merchant/h5/permission/1900000110\n1700000000\n" + b"A" * 32 + b"\n\n"


def _rate(op: Callable[[], object], threads: int, seconds: float) -> float:
    """Operations per second of ``op`` run by ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def loop(slot: int) -> None:
        start.wait()
        n = 0
        while not stop.is_set():
            for _ in range(10):  # check the flag every few operations, not every one
                op()
            n += 10
        counts[slot] = n

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


def _rate_beside_python(op: Callable[[], object], seconds: float) -> float:
    """Operations per second of ``op`` in one thread while this thread runs Python nonstop."""
    count = 0
    stop = threading.Event()

    def loop() -> None:
        nonlocal count
        while not stop.is_set():
            op()
            count += 1

    worker = threading.Thread(target=loop)
    began = time.perf_counter()
    worker.start()
    spins = 0
    while time.perf_counter() - began < seconds:  # Python bytecode: the GIL is only given up
        spins += 1  # when the switch interval asks for it
    stop.set()
    worker.join()
    return count / (time.perf_counter() - began)


def run(quick: bool = False) -> list[Row]:
    """Sign and verify rates on 1 and 2 threads, interleaved, median of 3 (1 when quick)."""
    seconds, repeats = (0.3, 1) if quick else (1.0, 3)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    signature = key.sign(MESSAGE, _PKCS1, _SHA256)

    def sign() -> bytes:
        return key.sign(MESSAGE, _PKCS1, _SHA256)

    def verify() -> None:
        public.verify(signature, MESSAGE, _PKCS1, _SHA256)

    ops = {"sign": sign, "verify": verify}
    threads = (1, 2) if (os.cpu_count() or 1) >= 2 else (1,)
    rates: dict[tuple[str, int], list[float]] = {}
    beside: list[float] = []
    for _ in range(repeats):
        for name, op in ops.items():
            for n in threads:
                rates.setdefault((name, n), []).append(_rate(op, n, seconds))
        beside.append(_rate_beside_python(sign, seconds))
    rows: list[Row] = []
    for name in ops:
        one = statistics.median(rates[(name, 1)])
        rows.append(Row(benchmark="rsa-2048", metric=f"{name} 1 thread", value=one, unit="ops/s"))
        rows.append(
            Row(benchmark="rsa-2048", metric=f"{name} 1 thread", value=1e6 / one, unit="us/op")
        )
        if 2 in threads:
            two = statistics.median(rates[(name, 2)])
            rows.append(
                Row(
                    benchmark="rsa-2048",
                    metric=f"{name} 2 threads",
                    value=two,
                    unit="ops/s",
                    ratio_to="1 thread",
                    ratio=two / one,
                )
            )
    rows.append(
        Row(
            benchmark="rsa-2048",
            metric="sign beside busy Python",
            value=statistics.median(beside),
            unit="ops/s",
            ratio_to="sign 1 thread",
            ratio=statistics.median(beside) / statistics.median(rates[("sign", 1)]),
        )
    )
    return rows


if __name__ == "__main__":
    main_with_quick("bench_crypto", run, "0.3 s per figure, one run")
