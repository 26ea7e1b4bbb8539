"""``wxpay-async onboard``: onboard sub-merchants from a JSON Lines file, resumably.

Each input line is an application object with the API's field names, or
``{"job_id": "...", "application": {...}}`` to give the job a stable id of your own (otherwise
the id is a hash of the line's content). Results are written as JSON Lines, one per job, in
completion order. The event loop runs on one core; ``--processes N`` runs the batch in N
processes (one ``--shard`` each, one journal) and merges their results into one file and one
progress line, and ``--shard K/N`` runs every N-th line only, for N commands started by hand
(on other machines sharing the journal's directory, say). Ctrl-C stops cleanly: jobs in flight
stay recorded in the journal and are re-sent with their stored Idempotency-Key and body on the
next run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from ._client import WxPayClient
from ._config import RetryPolicy
from ._errors import ValidationError
from .batch import Progress, onboard_many
from .config_file import MerchantConfig, load_merchant_config

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", type=Path, help="JSON Lines file of applications ('-' = stdin)")
    parser.add_argument("--config", type=Path, default=Path("merchant.toml"), help="merchant.toml")
    parser.add_argument("--journal", type=Path, default=Path("onboarding.db"))
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="jobs in flight (32); with --processes, the total over all processes",
    )
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
        "speed up a busy batch (the GIL); use --processes to use more cores",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="run the batch in N processes (one core each) on one --journal, merged into one "
        "results file and one progress line",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="K/N",
        help="run only lines K+1, K+1+N, K+1+2N, ... of the file (K = 0..N-1): N commands on "
        "one file and one --journal, started by hand (--processes does this for you)",
    )
    # Internal: a process started by --processes writes "<in flight>\t<result JSON>" lines to
    # stdout for its parent, and neither a progress line nor a summary of its own.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
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


async def _run(args: argparse.Namespace, config: MerchantConfig) -> int:
    view = _ProgressView(
        "none" if args.worker else args.progress,
        None if args.worker else _count_lines(args.jobs, args.shard),
        sys.stderr,
    )
    last: Progress | None = None
    tally = _Tally()
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
            async with config.client(retry=retry, sign_executor=signer, **pool) as client:
                await _write_results(client)
        finally:
            if signer is not None:
                signer.shutdown(wait=False, cancel_futures=True)

    async def _write_results(client: WxPayClient) -> None:
        with _results_file(args) as out, _flushed_every(out, WORKER_FLUSH if args.worker else 0):
            async for result in onboard_many(
                client,
                _read_jobs(args.jobs, args.shard),  # read by the workers as they free up
                concurrency=args.concurrency,
                journal=args.journal,
                on_progress=on_progress,
            ):
                line = json.dumps(result.to_json(), ensure_ascii=False)
                tally.add(result.ok, result.from_journal, result.error_code)
                if args.worker:
                    # For the parent: what it counts, then the line it writes. A worker's
                    # stdout is flushed every WORKER_FLUSH seconds (a line per write would
                    # cost both processes a system call and a wake-up per job); a result
                    # lost with a killed worker is in the journal, and the next run reports it.
                    assert last is not None  # on_progress ran for this result
                    code = (result.error_code or "").replace("\t", " ")
                    out.write(
                        f"{last.in_flight}\t{result.ok:d}\t{result.from_journal:d}\t{code}\t{line}\n"
                    )
                else:
                    out.write(line + "\n")
                    out.flush()  # a crash loses no result already yielded

    task = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    # A worker ignores the terminal's Ctrl-C (see run()); its parent stops it with SIGTERM.
    signals = (signal.SIGTERM,) if args.worker else (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, task.cancel)
    interrupted = False
    try:
        await task
    except asyncio.CancelledError:
        interrupted = True
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    if args.worker:  # the parent reports; it tells failed jobs from a failed process
        return 130 if interrupted else 0
    view.finish(last)
    return tally.summary(args, started, interrupted)


#: How often a worker of ``--processes`` hands its finished results to the parent (seconds).
WORKER_FLUSH = 0.05


@contextlib.contextmanager
def _flushed_every(out: IO[str], seconds: float) -> Iterator[None]:
    """Flush ``out`` every ``seconds`` while the block runs (0: never), and at its end."""
    if not seconds:
        yield
        return
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal handle
        out.flush()
        handle = loop.call_later(seconds, tick)

    handle = loop.call_later(seconds, tick)
    try:
        yield
    finally:
        handle.cancel()
        out.flush()


def _results_file(args: argparse.Namespace) -> IO[str]:
    """``--out``; a worker's stdout (to its parent), in UTF-8 whatever the locale says."""
    if args.worker:
        return open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)
    out: Path = args.out
    return out.open("w", encoding="utf-8")


class _Tally:
    """Results counted for the summary: ok, failed, already in the journal, failure codes."""

    def __init__(self) -> None:
        self.ok = self.failed = self.from_journal = 0
        self.codes: collections.Counter[str] = collections.Counter()

    def add(self, ok: bool, from_journal: bool, error_code: str | None) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
            self.codes[error_code or "UNKNOWN"] += 1
        self.from_journal += from_journal

    def summary(self, args: argparse.Namespace, started: float, interrupted: bool) -> int:
        """Print the summary to stderr; the exit status (130 interrupted, 1 any failure)."""
        elapsed = time.monotonic() - started
        print(
            f"{self.ok + self.failed} jobs in {elapsed:.1f}s: {self.ok} ok, {self.failed} failed"
            f" ({self.from_journal} already in the journal); results in {args.out}",
            file=sys.stderr,
        )
        for code, n in self.codes.most_common():
            print(f"  {code}: {n}", file=sys.stderr)
        if interrupted:
            print(
                f"interrupted: unfinished jobs stay in {args.journal}; run again to resume",
                file=sys.stderr,
            )
            return 130
        return 1 if self.failed else 0


def _worker_command(args: argparse.Namespace, k: int, n: int) -> list[str]:
    """The command line of process ``k`` of ``n``: shard k/n, its share of the concurrency."""
    return [
        sys.executable,
        "-m",
        "wxpay_async.cli",
        "onboard",
        str(args.jobs),
        "--config",
        str(args.config),
        "--journal",
        str(args.journal),
        "--concurrency",
        str(math.ceil(args.concurrency / n)),
        "--attempts",
        str(args.attempts),
        "--sign-threads",
        str(args.sign_threads),
        "--shard",
        f"{k}/{n}",
        "--progress",
        "none",
        "--worker",
    ]


async def _run_processes(args: argparse.Namespace) -> int:
    """Run shards 0..N-1 in N child processes; merge their results, progress and summary."""
    n = args.processes
    view = _ProgressView(args.progress, _count_lines(args.jobs), sys.stderr)
    tally = _Tally()
    in_flight = [0] * n
    last: Progress | None = None
    started = time.monotonic()
    stops = 0
    children: list[asyncio.subprocess.Process] = []

    def stop() -> None:
        # The first Ctrl-C or SIGTERM stops the workers cleanly (each finishes its bookkeeping
        # and exits 130); a second one kills them. Either way their journal rows let the next
        # run re-send what was in flight with the same key and body.
        nonlocal stops
        stops += 1
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM) if stops == 1 else child.kill()

    async def drain(k: int, child: asyncio.subprocess.Process, out: IO[str]) -> int:
        nonlocal last
        assert child.stdout is not None
        rest = b""
        # Whatever a worker flushed, at once: one file write and one progress update per chunk.
        while chunk := await child.stdout.read(2**16):
            *lines, rest = (rest + chunk).split(b"\n")
            for raw in lines:
                flight, ok, from_journal, code, line = raw.decode("utf-8").split("\t", 4)
                in_flight[k] = int(flight)
                tally.add(ok == "1", from_journal == "1", code)
                out.write(line + "\n")
            out.flush()
            last = Progress(
                done=tally.ok,
                failed=tally.failed,
                in_flight=sum(in_flight),
                elapsed=time.monotonic() - started,
            )
            view(last)
        # ``rest``: a line cut off by a killed worker, not a result.
        in_flight[k] = 0
        return await child.wait()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        with _results_file(args) as out:
            for k in range(n):
                children.append(
                    await asyncio.create_subprocess_exec(
                        *_worker_command(args, k, n),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                    )
                )
            returns = await asyncio.gather(*(drain(k, c, out) for k, c in enumerate(children)))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for child in children:  # only if this process itself failed: no stray senders
            if child.returncode is None:
                child.kill()
                await child.wait()
    view.finish(last)
    crashed = [(k, code) for k, code in enumerate(returns) if code not in (0, 130)]
    interrupted = stops > 0 or any(code == 130 for code in returns)
    status = tally.summary(args, started, interrupted)
    for k, code in crashed:
        print(
            f"process {k + 1} of {n} (--shard {k}/{n}) exited with code {code}: its unfinished"
            f" jobs stay in {args.journal}; run again to resume",
            file=sys.stderr,
        )
    return status if status == 130 or not crashed else 1


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        k, n = args.shard
        args.out = Path("results.jsonl" if n == 1 else f"results-{k}-of-{n}.jsonl")
    problem = _refusal(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:  # read once here: a bad file is one clear line, before any process starts
        config = load_merchant_config(args.config)
    except ValidationError as exc:
        print(f"--config: {exc}", file=sys.stderr)
        return 2
    if args.processes > 1:
        return asyncio.run(_run_processes(args))
    if not args.worker:
        return asyncio.run(_run(args, config))
    # The terminal's Ctrl-C reaches the whole process group; only the parent acts on it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return asyncio.run(_run(args, config))
    finally:
        signal.signal(signal.SIGINT, previous)


def _refusal(args: argparse.Namespace) -> str:
    """What is wrong with the arguments, or ``""``."""
    if args.concurrency < 1 or args.attempts < 1:
        return "--concurrency and --attempts must be at least 1"
    if args.sign_threads < 0:
        return "--sign-threads must be 0 or more"
    if args.processes < 1:
        return "--processes must be at least 1"
    if str(args.jobs) != "-" and not args.jobs.exists():
        return f"{args.jobs}: no such file"
    if args.processes > 1 and str(args.jobs) == "-":
        return "--processes needs a file, not stdin: each process reads it"
    if args.processes > 1 and args.shard != (0, 1):
        return "--processes runs the shards itself; leave out --shard"
    return ""
