"""``wxpay-async onboard``: onboard sub-merchants from a JSON Lines file, resumably.

Each input line is an application object with the API's field names, or
``{"job_id": "...", "application": {...}}`` to give the job a stable id of your own (otherwise
the id is a hash of the line's content). Results are written as JSON Lines, one per job, in
completion order. The event loop runs on one core; ``--processes N`` runs the batch in N
processes (one ``--shard`` each, one journal) and merges their results into one file and one
progress line, and ``--shard K/N`` runs one N-th of the jobs, for N commands started by hand.
A job's shard follows from its job id, so every copy of a job lands in the same process (and is
reported as a duplicate there, as in one process). Ctrl-C stops cleanly: jobs in flight stay
recorded in the journal and are re-sent with their stored Idempotency-Key and body on the next
run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from ._client import WxPayClient
from ._config import RetryPolicy
from ._errors import ValidationError
from .batch import Journal, Progress, _unit, onboard_many
from .config_file import MerchantConfig, load_merchant_config
from .crypto import Padding

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
        help="sign requests in N threads (in each process): frees the event loop during "
        "signatures but does not speed up a busy batch (the GIL); use --processes for more cores",
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
        help="run only the jobs of shard K of N (K = 0..N-1, by job id): N commands on one "
        "file and one --journal, started by hand (--processes does this for you)",
    )
    parser.add_argument(
        "--padding",
        choices=("pkcs1v15", "oaep"),
        default=None,
        help="RSA padding of the contact fields (default: the library's, PKCS#1 v1.5 for "
        "/hk/v3; whether the endpoint also takes OAEP is unconfirmed)",
    )
    parser.add_argument(
        "--store-photos-as",
        choices=("string", "array"),
        default=None,
        help="business.store_photos as a JSON-array string (default) or an array (unconfirmed)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="also run jobs whose journal holds a final failure for the same content: a "
        "refused request is re-sent with its stored key and bytes unchanged (fix the cause "
        "first: a key, a permission), a job that did not validate is prepared again",
    )
    # Internal: a process started by --processes writes "<in flight>\t<ok>\t<from journal>\t
    # <result JSON>" lines for its parent, and neither a progress line nor a summary of its own.
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


def _lines(path: Path) -> Iterator[tuple[int, str | None, bytes]]:
    """(line number, text or ``None`` if it is not UTF-8, raw bytes) of every non-blank line.

    Read as bytes and split at ``\\n`` only: JSON Lines' separator (a stray ``\\r`` inside a
    line is JSON whitespace, not a new line).
    """
    stream: IO[bytes] = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    with stream:
        for number, raw in enumerate(stream, start=1):
            try:
                text: str | None = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is None or text.strip():
                yield number, text, raw


def _jobs(path: Path, shard: tuple[int, int] = (0, 1)) -> Iterator[Any]:
    """The file's jobs, identified here (``onboard_many`` does not hash them again); with
    ``shard`` (K, N), only those whose job id hashes to K modulo N.

    By job id, not by line, so that copies of one job always share a process: a second copy
    is then a ``DUPLICATE_JOB`` there, as in one process, instead of a concurrent re-send from
    another process. A line that is not UTF-8 or JSON, or whose content cannot be hashed (a
    lone surrogate), becomes a job ``line-N`` that fails validation; the batch goes on.
    """
    k, n = shard
    for number, text, raw in _lines(path):
        try:
            if text is None:
                raise ValueError("not UTF-8")
            unit = _unit(json.loads(text))
        except (ValueError, TypeError, RecursionError):  # also JSON and UTF-8 errors
            shown = raw.decode("utf-8", "replace").strip()[:80]
            unit = _unit({"job_id": f"line-{number}", "application": shown})
        if n == 1 or zlib.crc32(unit.job_id.encode()) % n == k:
            yield unit


def _count_jobs(path: Path) -> int | None:
    """Jobs in the file, for the progress total; ``None`` for stdin or any other stream (a
    pipe such as ``<(zcat jobs.gz)`` can be read once only: counting would consume it)."""
    return sum(1 for _ in _lines(path)) if _is_regular_file(path) else None


def _is_regular_file(path: Path) -> bool:
    if str(path) == "-":
        return False
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


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
        # A shard's share is known only by identifying every row: no total (and no ETA).
        None if args.worker or args.shard[1] > 1 else _count_jobs(args.jobs),
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
        with _results_file(args) if not args.worker else _to_parent(args, task.cancel) as out:
            results = onboard_many(
                client,
                _jobs(args.jobs, args.shard),  # read by the workers as they free up
                concurrency=args.concurrency,
                journal=args.journal,
                on_progress=on_progress,
                padding=_PADDINGS[args.padding],
                store_photos_as=args.store_photos_as,
                retry_failed=args.retry_failed,
            )
            async with contextlib.aclosing(results):  # stopped: its jobs stay resumable
                async for result in results:
                    line = json.dumps(result.to_json(), ensure_ascii=False)
                    tally.add(result.ok, result.from_journal, result.error_code)
                    if args.worker:
                        # For the parent: what it counts, then the line it writes (JSON has
                        # no raw tab or newline). Flushed every WORKER_FLUSH seconds, not per
                        # line (a system call and a wake-up per job for both processes); a
                        # result lost with a killed worker is in the journal, and the next run
                        # reports it.
                        assert last is not None  # on_progress ran for this result
                        flags = f"{result.ok:d}\t{result.from_journal:d}"
                        out.write(f"{last.in_flight}\t{flags}\t{line}\n")
                    else:
                        out.write(line + "\n")
                        out.flush()  # a crash loses no result already yielded

    task = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    # A worker's parent holds its stdin open and never writes to it: end of file means the
    # parent is gone (killed), so stop as if told to. Only on a pipe: epoll refuses files and
    # /dev/null, and on a terminal it would eat what the user types.
    watching = args.worker and _stdin_is_a_pipe(args)
    if watching:
        loop.add_reader(0, _stop_on_eof, loop, task)
    interrupted = False
    try:
        await task
    except asyncio.CancelledError:
        interrupted = True
    except BrokenPipeError:
        if not args.worker:
            raise
        interrupted = True  # the parent is gone (its end of the pipe closed); see _to_parent
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if watching:
            loop.remove_reader(0)
    if args.worker:  # the parent reports; it tells failed jobs from a failed process
        return 130 if interrupted else 0
    view.finish(last)
    return tally.summary(args, started, interrupted)


def _stdin_is_a_pipe(args: argparse.Namespace) -> bool:
    if args.frames_fd == 0:  # stdin was closed, and the copy of stdout took its number
        return False
    try:
        return stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:
        return False


def _stop_on_eof(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
    try:
        ended = not os.read(0, 4096)
    except OSError:
        ended = True
    if ended:  # once: a pipe at its end stays readable, and each cancel would cut the cleanup
        loop.remove_reader(0)
        task.cancel()


#: How often a worker of ``--processes`` hands its finished results to the parent (seconds).
WORKER_FLUSH = 0.05


@contextlib.contextmanager
def _to_parent(args: argparse.Namespace, stop: Callable[[], object]) -> Iterator[IO[str]]:
    """A worker's results, for its parent: flushed every ``WORKER_FLUSH`` seconds and at the end.

    A broken pipe means the parent is gone: the batch is stopped (``stop``) and nothing more is
    written; every result is in the journal, and the next run reports it.
    """
    fd, args.frames_fd = args.frames_fd, None  # the file owns it now
    out = open(fd, "w", encoding="utf-8")  # noqa: SIM115 (closed below, broken pipe or not)
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal handle
        try:
            out.flush()
        except BrokenPipeError:
            handle = None
            stop()
            return
        handle = loop.call_later(WORKER_FLUSH, tick)

    handle = loop.call_later(WORKER_FLUSH, tick)
    try:
        yield out
    finally:
        if handle is not None:
            handle.cancel()
        with contextlib.suppress(BrokenPipeError):
            out.flush()
        with contextlib.suppress(BrokenPipeError):
            out.close()  # flushes what a failed flush left, and closes the descriptor anyway


def _results_file(args: argparse.Namespace) -> IO[str]:
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


#: How a worker starts: ``-P`` keeps the working directory off ``sys.path``, as the installed
#: ``wxpay-async`` command does (a ``secrets.py`` there must not replace the standard
#: library's), and the directory the parent's package came from goes first only when it is not
#: on the path already (a source checkout run with ``-m``: the worker then sees what the parent
#: saw).
_WORKER_BOOT = """\
import os, sys
root = sys.argv.pop(1)
if all(os.path.realpath(entry) != root for entry in sys.path):
    sys.path.insert(0, root)
from wxpay_async.cli import main
sys.exit(main(sys.argv[1:]))
"""
_PACKAGE_ROOT = os.path.realpath(Path(__file__).resolve().parent.parent)


def _worker_command(args: argparse.Namespace, k: int, n: int) -> list[str]:
    """Process ``k`` of ``n``: shard k/n and its share of the total concurrency."""
    share = args.concurrency // n + (k < args.concurrency % n)
    options = [
        f"--config={args.config}",
        f"--journal={args.journal}",
        f"--concurrency={share}",
        f"--attempts={args.attempts}",
        f"--sign-threads={args.sign_threads}",
        f"--shard={k}/{n}",
        "--progress=none",
        "--worker",
    ]
    if args.padding is not None:
        options.append(f"--padding={args.padding}")
    if args.store_photos_as is not None:
        options.append(f"--store-photos-as={args.store_photos_as}")
    if args.retry_failed:
        options.append("--retry-failed")
    boot = [sys.executable, "-P", "-c", _WORKER_BOOT, _PACKAGE_ROOT]
    return [*boot, "onboard", *options, "--", str(args.jobs)]  # a file name may start with -


def _frame(raw: bytes) -> tuple[int, bool, bool, str, str | None] | None:
    """A worker's line: (in flight, ok, from journal, result JSON, error code); ``None`` if it
    is not one (something printed before the worker moved its results off stdout)."""
    try:
        flight, ok, from_journal, line = raw.decode("utf-8").split("\t", 3)
        if ok not in ("0", "1") or from_journal not in ("0", "1") or line[:1] != "{":
            return None
        code = None if ok == "1" else json.loads(line)["error_code"]  # failures only: rare
        if code is not None and not isinstance(code, str):
            return None
        return int(flight), ok == "1", from_journal == "1", line, code
    except (ValueError, KeyError, TypeError):  # ValueError: also UnicodeDecodeError, JSON
        return None


async def _run_processes(args: argparse.Namespace) -> int:
    """Run shards 0..N-1 in N child processes; merge their results, progress and summary."""
    total = _count_jobs(args.jobs)
    n = max(1, min(args.processes, total or 1))  # no process without a job to run
    if n > args.concurrency:
        print(
            f"--concurrency must be at least --processes ({n}): each process runs a job at a time",
            file=sys.stderr,
        )
        return 2
    view = _ProgressView(args.progress, total, sys.stderr)
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
            _stop_child(child, stops)

    def suspend() -> None:
        # Ctrl-Z: the workers have process groups of their own, so the terminal stops only
        # this process; stop them too, then this one (the shell's fg continues it: resume()).
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)

    def resume() -> None:
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGCONT)

    async def drain(k: int, child: asyncio.subprocess.Process, out: IO[str]) -> int:
        nonlocal last
        assert child.stdout is not None
        rest = b""
        # Whatever a worker flushed, at once: one file write and one progress update per chunk.
        while chunk := await child.stdout.read(2**16):
            *lines, rest = (rest + chunk).split(b"\n")
            for raw in lines:
                frame = _frame(raw)
                if frame is None:  # printed before the worker moved its results off stdout
                    print(f"process {k + 1} of {n} printed: {raw[:200]!r}", file=sys.stderr)
                    continue
                in_flight[k], ok, from_journal, line, code = frame
                tally.add(ok, from_journal, code)
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
    handlers = {signal.SIGINT: stop, signal.SIGTERM: stop}
    handlers |= {signal.SIGTSTP: suspend, signal.SIGCONT: resume}
    for sig, handler in handlers.items():
        loop.add_signal_handler(sig, handler)
    try:
        with _results_file(args) as out:
            for k in range(n):
                if stops:  # stopped while starting: the rest never start
                    break
                child = await asyncio.create_subprocess_exec(
                    *_worker_command(args, k, n),
                    # Held open and never written: a worker stops when it reads end of file
                    # (this process is gone). Its own process group: a terminal's Ctrl-C
                    # reaches this process alone, which stops the workers.
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    process_group=0,
                )
                _stop_child(child, stops)  # a signal that came while it started
                children.append(child)
            async with asyncio.TaskGroup() as group:  # one failing drain stops the others
                drains = [group.create_task(drain(k, c, out)) for k, c in enumerate(children)]
            returns = [task.result() for task in drains]
    finally:
        for sig in handlers:
            loop.remove_signal_handler(sig)
        for child in children:  # only if this process itself failed: no stray senders
            if child.returncode is None:
                child.kill()
                await child.wait()
    view.finish(last)
    # Stopped, not failed: 130, or a signal that ended a worker before it could handle it
    # (while it started; a Ctrl-C can reach a worker forked just before its own group is set).
    stopped = (130, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL) if stops else (130,)
    crashed = [(k, code) for k, code in enumerate(returns) if code not in (0, *stopped)]
    interrupted = stops > 0 or 130 in returns or len(children) < n
    status = tally.summary(args, started, interrupted)
    for k, code in crashed:
        print(
            f"process {k + 1} of {n} (--shard {k}/{n}) exited with code {code}: its unfinished"
            f" jobs stay in {args.journal}; run again to resume",
            file=sys.stderr,
        )
    return status if status == 130 or not crashed else 1


def _stop_child(child: asyncio.subprocess.Process, stops: int) -> None:
    if stops and child.returncode is None:
        child.send_signal(signal.SIGTERM) if stops == 1 else child.kill()


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
    try:  # opened (and created) before the results file is: a bad journal empties nothing
        Journal(args.journal).close()
    except ValidationError as exc:
        print(f"--journal: {exc.rule}", file=sys.stderr)
        return 2
    if args.processes > 1:
        return asyncio.run(_run_processes(args))
    if not args.worker:
        return asyncio.run(_run(args, config))
    with _frames_off_stdout(args):
        return asyncio.run(_run(args, config))


@contextlib.contextmanager
def _frames_off_stdout(args: argparse.Namespace) -> Iterator[None]:
    """A worker sends its results on a private copy of stdout, and points stdout itself at
    stderr for the rest of its life (it is a process of its own): whatever else prints (a
    library, a hook, an exit handler) cannot break the lines its parent reads."""
    sys.stdout.flush()
    args.frames_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        yield
    finally:
        if args.frames_fd is not None:  # the batch never started
            os.close(args.frames_fd)


_PADDINGS = {None: None, "pkcs1v15": Padding.PKCS1V15, "oaep": Padding.OAEP}


def _same_file(out: Path, jobs: Path, journal: Path) -> str:
    """What ``out`` would overwrite (the jobs file, the journal or its WAL files), or ``""``."""
    if str(jobs) != "-" and _is(out, jobs):
        return "the jobs file"
    for suffix in ("", "-wal", "-shm", "-journal"):
        if _is(out, journal.with_name(journal.name + suffix)):
            return "the journal" if not suffix else f"the journal's {suffix[1:]} file"
    return ""


def _is(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


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
    if str(args.jobs) != "-" and args.jobs.is_dir():
        return f"{args.jobs}: is a directory, not a JSON Lines file"
    if args.processes > 1 and not _is_regular_file(args.jobs):
        return "--processes needs a regular file (not stdin or a pipe): each process reads it"
    clash = _same_file(args.out, args.jobs, args.journal)
    if clash:
        return f"--out {args.out} is {clash}: writing results there would destroy it"
    if args.out.is_dir() or not args.out.parent.is_dir():
        return f"--out {args.out}: not a file in an existing directory"
    if args.processes > 1 and args.shard != (0, 1):
        return "--processes runs the shards itself; leave out --shard"
    if args.worker and str(args.jobs) == "-":
        return "--worker reads a file: its stdin is the pipe that tells it its parent is alive"
    return ""
