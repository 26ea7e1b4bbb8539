"""``wxpay-async onboard``: onboard sub-merchants from a JSON Lines file, resumably.

Each input line is an application object with the API's field names, or
``{"job_id": "...", "application": {...}}`` to give the job a stable id of your own (otherwise
the id is a hash of the line's content). Results are written as JSON Lines, one per job, in
completion order. ``--shard K/N`` runs every N-th line only, so N commands on one file (and
one journal) use N cores. Ctrl-C stops cleanly: jobs in flight stay recorded in the journal and are
re-sent with their stored Idempotency-Key and body on the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from ._client import WxPayClient
from ._config import RetryPolicy
from .batch import JobResult, Progress, onboard_many
from .config_file import client_from_config

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", type=Path, help="JSON Lines file of applications ('-' = stdin)")
    parser.add_argument("--config", type=Path, default=Path("merchant.toml"), help="merchant.toml")
    parser.add_argument("--journal", type=Path, default=Path("onboarding.db"))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--attempts",
        type=int,
        default=6,
        help="attempts per request on SYSTEM_ERROR/429/lost answers (same key and body)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default results.jsonl; results-K-of-N.jsonl with --shard K/N)",
    )
    parser.add_argument(
        "--sign-threads",
        type=int,
        default=0,
        help="sign requests in N threads: frees the event loop during signatures but does not "
        "speed up a busy batch (the GIL); use --shard to use more cores",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="K/N",
        help="run only lines K+1, K+1+N, K+1+2N, ... of the file (K = 0..N-1): start N commands"
        " on one file and one --journal to use N cores",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="live bar on a terminal, periodic lines otherwise (auto)",
    )


def _shard(text: str) -> tuple[int, int]:
    """``K/N`` → (K, N), 0 <= K < N."""
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)
    shard = (int(match[1]), int(match[2])) if match else (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"expected K/N with 0 <= K < N, got {text!r}")
    return shard


def _mine(number: int, shard: tuple[int, int]) -> bool:
    """Whether line ``number`` (1-based, blank lines counted) belongs to ``shard``."""
    k, n = shard
    return (number - 1) % n == k


def _read_jobs(path: Path, shard: tuple[int, int] = (0, 1)) -> Iterator[dict[str, Any]]:
    """Stream the file; a line that is not JSON becomes a job that fails validation."""
    stream: IO[str] = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip() or not _mine(number, shard):
                continue
            try:
                item = json.loads(line)
            except ValueError:
                item = {"job_id": f"line-{number}", "application": line.strip()[:80]}
            yield item


def _count_lines(path: Path, shard: tuple[int, int] = (0, 1)) -> int | None:
    if str(path) == "-":
        return None
    with path.open("rb") as handle:
        lines = enumerate(handle, start=1)
        return sum(1 for number, line in lines if line.strip() and _mine(number, shard))


class _ProgressView:
    """A one-line live bar on a terminal; a line every few seconds otherwise."""

    def __init__(self, mode: str, total: int | None, out: IO[str]) -> None:
        if mode == "auto":
            mode = "bar" if out.isatty() else "lines"
        self.mode = mode
        self.total = total
        self.out = out
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if self.mode == "none" or (now - self._last < (0.1 if self.mode == "bar" else 2.0)):
            return
        self._last = now
        self._show(progress)

    def _show(self, p: Progress) -> None:
        total = self.total
        eta = ""
        if total and p.rate > 0:
            eta = f" ETA {max(0.0, (total - p.finished) / p.rate):5.0f}s"
        of = f"/{total}" if total else ""
        text = (
            f"{p.finished}{of} done={p.done} failed={p.failed} in-flight={p.in_flight} "
            f"{p.rate:7.1f}/s{eta}"
        )
        if self.mode == "bar":
            width = 30
            filled = int(width * p.finished / total) if total else 0
            bar = "#" * filled + "-" * (width - filled)
            self.out.write(f"\r[{bar}] {text}\x1b[K")
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def finish(self, p: Progress | None) -> None:
        if p is not None and self.mode != "none":
            self._show(p)
        if self.mode == "bar":
            self.out.write("\n")


async def _run(args: argparse.Namespace) -> int:
    view = _ProgressView(args.progress, _count_lines(args.jobs, args.shard), sys.stderr)
    last: Progress | None = None
    codes: collections.Counter[str] = collections.Counter()
    totals = {"ok": 0, "failed": 0, "from_journal": 0}
    started = time.monotonic()

    def on_progress(progress: Progress) -> None:
        nonlocal last
        last = progress
        view(progress)

    async def consume() -> None:
        retry = RetryPolicy(attempts=args.attempts)
        # The pool must allow as many connections as jobs in flight, or --concurrency would
        # be silently capped by the client's default of 64 per host.
        pool = {
            "connections": max(100, args.concurrency),
            "connections_per_host": max(64, args.concurrency),
        }
        signer = ThreadPoolExecutor(args.sign_threads) if args.sign_threads > 0 else None
        try:
            async with client_from_config(
                args.config, retry=retry, sign_executor=signer, **pool
            ) as client:
                await _write_results(client)
        finally:
            if signer is not None:
                signer.shutdown(wait=False, cancel_futures=True)

    async def _write_results(client: WxPayClient) -> None:
        with args.out.open("w", encoding="utf-8") as out:
            async for result in onboard_many(
                client,
                _read_jobs(args.jobs, args.shard),  # read by the workers as they free up
                concurrency=args.concurrency,
                journal=args.journal,
                on_progress=on_progress,
            ):
                _record(result, out, totals, codes)

    task = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    interrupted = False
    try:
        await task
    except asyncio.CancelledError:
        interrupted = True
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    view.finish(last)
    elapsed = time.monotonic() - started
    finished = totals["ok"] + totals["failed"]
    print(
        f"{finished} jobs in {elapsed:.1f}s: {totals['ok']} ok, {totals['failed']} failed"
        f" ({totals['from_journal']} already in the journal); results in {args.out}",
        file=sys.stderr,
    )
    for code, n in codes.most_common():
        print(f"  {code}: {n}", file=sys.stderr)
    if interrupted:
        print(
            f"interrupted: unfinished jobs stay in {args.journal}; run again to resume",
            file=sys.stderr,
        )
        return 130
    return 1 if totals["failed"] else 0


def _record(
    result: JobResult,
    out: IO[str],
    totals: dict[str, int],
    codes: collections.Counter[str],
) -> None:
    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    out.flush()
    totals["ok" if result.ok else "failed"] += 1
    totals["from_journal"] += result.from_journal
    if not result.ok:
        codes[result.error_code or "UNKNOWN"] += 1


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        k, n = args.shard
        args.out = Path("results.jsonl" if n == 1 else f"results-{k}-of-{n}.jsonl")
    if args.concurrency < 1 or args.attempts < 1 or args.sign_threads < 0:
        print("--concurrency and --attempts must be at least 1", file=sys.stderr)
        return 2
    if str(args.jobs) != "-" and not args.jobs.exists():
        print(f"{args.jobs}: no such file", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))
