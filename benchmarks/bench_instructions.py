"""Instructions per onboarding, counted by callgrind: a figure the machine's noise cannot move.

Wall and CPU times on a shared 2-vCPU machine wander by ±10 % from one run to the next, which
hides any change smaller than that. The number of instructions a job executes does not
wander. This benchmark runs ``bench_batch``'s batch (the same child process, minimal server,
applications and concurrency) under ``valgrind --tool=callgrind``, for ``onboard_many`` and
for the hand-written aiohttp floor, each at two sizes. Per job it reports the difference
between the two sizes divided by their difference in jobs, so interpreter start-up, imports
and connection set-up cancel out:

* ``cryptography``: instructions inside the ``cryptography`` package's native library (one
  RSA-2048 signature, three RSA encryptions and one RSA verify per job): the same work in both;
* ``rest``: everything else (the interpreter, aiohttp, asyncio, JSON, SQLite, hashing, libc);
  ``onboard_many``'s ratio to the floor here is its own cost: validation, models, the journal,
  retries and results.

The children run with the garbage collector off: a full collection walks every object of the
process (~300,000 after the imports), so whether one falls inside the measured stretch moves
the count by ±50k instructions per job, more than most changes to the code. What collections
cost is in ``bench_batch`` (wall and CPU with them on) and in the README's findings.

Instructions are not time. The RSA code retires ~3 instructions per cycle and interpreted
Python ~1, so the ``rest`` share of a job's time is about twice its share of instructions.
Under callgrind the batch runs ~50× slower, so the server's latency hardly overlaps the work:
the figures count work, not waiting. Valgrind's virtual CPU lacks some of the host's vector
extensions, so OpenSSL may pick another RSA code path than it does natively: the
``cryptography`` count is the same for both clients, not the native one.

Skipped, with one line saying so, where ``valgrind`` is not installed.
``python -m benchmarks.bench_instructions [--quick]``: ~6 minutes (``--quick``: ~2).
"""

from __future__ import annotations

import collections
import re
import shutil
import tempfile
from pathlib import Path

from ._srv_identity import Identity
from ._table import Row, main_with_quick
from .bench_batch import (
    CONCURRENCY,
    HAND_WRITTEN,
    LATENCY,
    Spec,
    _identity_fields,
    onboard_in_child,
    onboard_server,
)

__all__ = ["per_object", "run"]

BENCH = "instructions"
#: Jobs in the small and the large run of each client, and the concurrency. The per-job figure
#: is their difference, so both sizes must open every connection of the pool: connection
#: set-up then cancels out with the rest of the start-up.
SIZES = (300, 1300, CONCURRENCY)
QUICK_SIZES = (100, 300, 32)
#: The library whose instructions are the same RSA work for every client.
CRYPTO = re.compile(r"cryptography/hazmat/bindings/_rust")

_NAMED = re.compile(r"\((\d+)\)(?: (.*))?")


def per_object(path: Path) -> collections.Counter[str]:
    """Instructions executed in each object file (self cost), read from a callgrind output.

    Cost lines belong to the current ``ob=``; the line after ``calls=`` is the inclusive cost
    of a call (already counted where the callee ran) and is skipped. Names may be compressed:
    ``(n) name`` defines ``(n)``, a later ``(n)`` refers to it.
    """
    names: dict[str, str] = {}
    costs: collections.Counter[str] = collections.Counter()
    current, after_call = "?", False
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            head = line[:1]
            if head.isdigit() or head in "+-*":
                if after_call:
                    after_call = False
                elif len(fields := line.split()) > 1:
                    costs[current] += int(fields[1])
            elif line.startswith(("ob=", "cob=")):
                key, _, value = line.rstrip("\n").partition("=")
                name = value
                if found := _NAMED.fullmatch(value):
                    if found.group(2) is not None:
                        names[found.group(1)] = found.group(2)
                    name = names.get(found.group(1), value)
                if key == "ob":
                    current = name
            elif line.startswith("calls="):
                after_call = True
    return costs


def _split(costs: collections.Counter[str]) -> tuple[int, int]:
    """(instructions in the cryptography library, all the others)."""
    crypto = sum(n for name, n in costs.items() if CRYPTO.search(name))
    return crypto, sum(costs.values()) - crypto


def _count(spec: Spec, directory: Path, label: str) -> tuple[int, int]:
    out = directory / f"callgrind.{label}.{spec.jobs}"
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    onboard_in_child(spec, wrapper=wrapper)
    return _split(per_object(out))


def run(quick: bool = False) -> list[Row]:
    if shutil.which("valgrind") is None:
        print("... instructions: skipped (valgrind is not installed)")
        return []
    small, large, concurrency = QUICK_SIZES if quick else SIZES
    identity = Identity.generate()
    clients = {"onboard_many": False, HAND_WRITTEN: True}
    figures: dict[str, tuple[float, float]] = {}
    with onboard_server(identity, LATENCY) as server, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for label, floor in clients.items():
            counts = []
            for jobs in (small, large):
                spec = Spec(
                    jobs=jobs,
                    concurrency=concurrency,
                    journal=str(directory / f"{label}-{jobs}.db"),
                    url=server.url,
                    identity=_identity_fields(identity),
                    pool=concurrency,
                    floor=floor,
                    collect_garbage=False,
                )
                counts.append(_count(spec, directory, "floor" if floor else "ours"))
            (crypto_small, rest_small), (crypto_large, rest_large) = counts
            figures[label] = (
                (crypto_large - crypto_small) / (large - small),
                (rest_large - rest_small) / (large - small),
            )
    hand = figures[HAND_WRITTEN]
    rows = []
    for label, (crypto, rest) in figures.items():
        for part, value, base in (
            ("cryptography", crypto, hand[0]),
            ("rest", rest, hand[1]),
            ("all", crypto + rest, sum(hand)),
        ):
            mine = label == "onboard_many"
            rows.append(
                Row(
                    benchmark=BENCH,
                    metric=f"{label}: {part} per job",
                    value=value / 1e3,
                    unit="k instr",
                    ratio_to="floor" if mine else "",
                    ratio=value / base if mine else None,
                )
            )
    return rows


if __name__ == "__main__":
    main_with_quick("bench_instructions", run, "100 and 300 jobs at concurrency 32")
