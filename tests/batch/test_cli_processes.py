"""``wxpay-async onboard --processes N``: one batch over N worker processes, merged."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from wxpay_async.cli import main

from .conftest import CLI, Spawn, admin, application, arguments, done_rows

pytestmark = pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="watches worker processes through /proc (CONFIG_PROC_CHILDREN)",
)


def write_jobs(path: Path, mchid: str, numbers: range, *, head: list[str] | None = None) -> None:
    lines = [*(head or []), *(json.dumps(application(i, mchid)) for i in numbers)]
    path.write_text("".join(line + "\n" for line in lines))


def server_keys(url: str) -> list[str]:
    state = admin(url, "/_sandbox/state")
    return [s["idempotency_key"] for s in state["submerchants"].values() if s["idempotency_key"]]


def workers_of(pid: int) -> dict[int, list[str]]:
    """The worker processes of ``pid`` and their command lines (Linux ``/proc``)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return {}
    found = {}
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue  # already gone
        if "--worker" in command:  # not a child forked a moment ago and not yet a worker
            found[child] = command
    return found


def state(pid: int) -> str:
    """The process's state letter (R, S, T for stopped, Z); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def alive(pid: int) -> bool:
    return state(pid) not in ("", "Z")


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def wait_for_workers(parent: subprocess.Popen[bytes], count: int) -> dict[int, list[str]]:
    deadline = time.monotonic() + 30
    while len(found := workers_of(parent.pid)) < count:
        assert parent.poll() is None, parent.stderr.read().decode() if parent.stderr else ""
        assert time.monotonic() < deadline, f"fewer than {count} workers: {found}"
        time.sleep(0.005)
    return found


def wait_for_done(parent: subprocess.Popen[bytes], journal: Path, rows: int) -> None:
    deadline = time.monotonic() + 60
    while done_rows(journal) < rows:
        assert parent.poll() is None, parent.stderr.read().decode() if parent.stderr else ""
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.02)


def a_batch(
    sandbox_process: tuple[str, Path], tmp_path: Path, total: int
) -> tuple[str, Path, Path, Path]:
    """(sandbox URL, merchant.toml, a file of ``total`` jobs, a journal path)."""
    url, config = sandbox_process
    jobs, journal = tmp_path / "jobs.jsonl", tmp_path / "j.db"
    write_jobs(jobs, tomllib.loads(config.read_text())["mchid"], range(total))
    return url, config, jobs, journal


def resume_creates_each_job_once(
    url: str, config: Path, jobs: Path, journal: Path, total: int, stopped_at: int
) -> None:
    """A second run on the same journal finishes the batch; WeChat saw each job once."""
    assert stopped_at < total, "the batch finished before it could be stopped"
    out = journal.with_name("resumed.jsonl")
    argv = arguments(config, jobs, journal, out, "--processes", "2", "--attempts", "12")
    second = subprocess.run([*CLI, *argv], capture_output=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr.decode()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == total and all(r["ok"] for r in results)
    assert sum(r["from_journal"] for r in results) >= stopped_at
    keys = server_keys(url)
    assert len(keys) == total == len(set(keys))


def test_two_processes_onboard_every_line_once_into_one_results_file(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    write_jobs(jobs, mchid, range(90))
    # In-process, so the parent's own code is measured by coverage; its workers are processes.
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", "2")
    assert main([*argv, "--concurrency", "16"]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 90
    assert all(r["ok"] and not r["from_journal"] for r in results)
    assert len({r["job_id"] for r in results}) == 90
    keys = server_keys(url)
    assert len(keys) == 90 == len(set(keys))
    assert {r["idempotency_key"] for r in results} == set(keys)
    err = capsys.readouterr().err
    assert "90 jobs in" in err
    assert "90 ok, 0 failed" in err
    assert not list(tmp_path.glob("results-*"))  # no per-shard files left behind


def test_each_worker_gets_its_shard_and_share_and_failures_are_summed(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    write_jobs(jobs, mchid, range(60), head=["not json", "[1, 2", "{oops"])
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", "3")
    parent = spawn(
        [*CLI, *argv, "--concurrency", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    workers = wait_for_workers(parent, 3)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 1, err.decode()  # three lines failed
    options = [dict(o.split("=", 1) for o in cmd if o.startswith("--") and "=" in o)
               for cmd in workers.values()]  # fmt: skip
    assert sorted(o["--shard"] for o in options) == ["0/3", "1/3", "2/3"]
    assert sorted(int(o["--concurrency"]) for o in options) == [2, 3, 3]  # 8 in all
    results = {r["job_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(results) == 63
    for bad in ("line-1", "line-2", "line-3"):
        assert results[bad]["error_code"] == "VALIDATION_ERROR"
    assert sum(r["ok"] for r in results.values()) == 60
    text = err.decode()
    assert "63 jobs in" in text
    assert "60 ok, 3 failed" in text
    assert "VALIDATION_ERROR: 3" in text


def test_copies_of_a_job_share_a_process_and_are_created_once(
    sandbox_process: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    copy = json.dumps(application(7, mchid))
    named = json.dumps({"job_id": "shop-8", "application": application(8, mchid)})
    # Copies on neighbouring lines: a split by line would send them from different processes.
    write_jobs(jobs, mchid, range(4), head=[copy, copy, copy, named, named, named])
    monkeypatch.chdir(tmp_path)
    for k in range(3):  # the shards by hand: every copy of a job is in one shard's results
        main(["onboard", str(jobs), "--config", str(config), "--shard", f"{k}/3"])
    shards = [
        [
            json.loads(line)
            for line in (tmp_path / f"results-{k}-of-3.jsonl").read_text().splitlines()
        ]
        for k in range(3)
    ]
    copied = {r["job_id"] for part in shards for r in part if r["job_id"] != "shop-8"}
    for job_id in {"shop-8", *copied}:
        holders = [k for k, part in enumerate(shards) if any(r["job_id"] == job_id for r in part)]
        assert len(holders) == 1, (job_id, holders)

    out, before = tmp_path / "results.jsonl", set(server_keys(url))
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", "3")
    run = subprocess.run([*CLI, *argv], capture_output=True, timeout=120, check=False)
    assert run.returncode == 1, run.stderr.decode()  # the extra copies are reported
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 10
    counts = collections.Counter(r["job_id"] for r in results)
    assert sorted(counts.values()) == [1, 1, 1, 1, 3, 3]
    assert counts["shop-8"] == 3
    for job_id in (job_id for job_id, n in counts.items() if n == 3):
        copies = [r for r in results if r["job_id"] == job_id]
        # One sends; a copy is a duplicate while it runs, or its stored result afterwards.
        assert sum(r["ok"] and not r["from_journal"] for r in copies) == 1
        assert all(r["ok"] or r["error_code"] == "DUPLICATE_JOB" for r in copies)
    keys = [key for key in server_keys(url) if key not in before]  # this run's creations
    assert len(keys) == 6 == len(set(keys))


def test_sigterm_stops_every_process_and_a_rerun_finishes_each_job_once(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    total = 400
    url, config, jobs, journal = a_batch(sandbox_process, tmp_path, total)
    admin(url, "/_sandbox/faults/rate", {"kind": "drop_after", "rate": 0.1})
    first_out = tmp_path / "first.jsonl"
    argv = arguments(config, jobs, journal, first_out, "--processes", "2", "--attempts", "12")
    first = spawn(
        [*CLI, *argv, "--concurrency", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for_done(first, journal, 30)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    stopped_at = done_rows(journal)
    reported = [json.loads(line) for line in first_out.read_text().splitlines()]
    assert reported and all(r["ok"] for r in reported)
    resume_creates_each_job_once(url, config, jobs, journal, total, stopped_at)


def test_a_worker_hands_its_parent_counts_then_the_result_line(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    # What one process of --processes writes for its parent, with its stdin held open.
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, mchid, range(3), head=["not json"])
    argv = arguments(config, jobs, tmp_path / "j.db", tmp_path / "unused.jsonl")
    worker = spawn(
        [*CLI, *argv, "--shard", "0/1", "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert worker.stdout is not None and worker.stderr is not None
    out = worker.stdout.read()
    err = worker.stderr.read()
    assert worker.wait(timeout=60) == 0, err.decode()  # failed jobs are the parent's call
    assert err == b""  # no progress line, no summary of its own
    assert not (tmp_path / "unused.jsonl").exists()
    rows = [line.split("\t", 3) for line in out.decode().splitlines()]
    assert len(rows) == 4
    for flight, ok, from_journal, line in rows:
        result = json.loads(line)
        assert 0 <= int(flight) <= 32
        assert (ok, from_journal) == (str(int(result["ok"])), str(int(result["from_journal"])))
    assert sorted(r["error_code"] or "" for r in map(json.loads, (r[3] for r in rows))) == [
        "",
        "",
        "",
        "VALIDATION_ERROR",
    ]


def test_a_worker_stops_when_its_parent_is_killed(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    total = 400
    url, config, jobs, journal = a_batch(sandbox_process, tmp_path, total)
    argv = arguments(config, jobs, journal, tmp_path / "first.jsonl", "--processes", "2")
    parent = spawn(
        [*CLI, *argv, "--concurrency", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    workers = wait_for_workers(parent, 2)
    wait_for_done(parent, journal, 20)
    parent.kill()
    parent.wait(timeout=10)
    # They read end of file on stdin (or find their results pipe broken), and stop.
    wait_until(lambda: not any(alive(pid) for pid in workers), "a worker outlived its parent")
    assert parent.stderr is not None
    assert b"Traceback" not in parent.stderr.read()  # stopped, not broken by a closed pipe
    resume_creates_each_job_once(url, config, jobs, journal, total, done_rows(journal))


def test_a_worker_stops_at_the_end_of_its_stdin_and_on_a_broken_results_pipe(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    # One worker, as its parent starts it, then each of the two signs that the parent is gone.
    for sign in ("stdin ends", "results pipe breaks"):
        (tmp_path / sign).mkdir()
        _url, config, jobs, journal = a_batch(sandbox_process, tmp_path / sign, 300)
        argv = arguments(config, jobs, journal, tmp_path / "unused.jsonl")
        worker = spawn(
            [*CLI, *argv, "--concurrency", "1", "--shard", "0/1", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert worker.stdin is not None and worker.stdout is not None
        assert worker.stdout.readline()  # it is running: a first result
        if sign == "stdin ends":
            worker.stdin.close()  # its results pipe stays open (and unread)
        else:
            worker.stdout.close()  # its stdin stays open
        assert worker.wait(timeout=20) == 130, sign
        assert worker.stderr is not None
        assert b"Traceback" not in worker.stderr.read(), sign
        assert 0 < done_rows(journal) < 300, sign


def test_ctrl_z_stops_the_workers_with_the_command_and_fg_resumes_them(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    _url, config, jobs, journal = a_batch(sandbox_process, tmp_path, 300)
    out = tmp_path / "results.jsonl"
    argv = arguments(config, jobs, journal, out, "--processes", "2", "--concurrency", "2")
    parent = spawn([*CLI, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = wait_for_workers(parent, 2)
    wait_for_done(parent, journal, 5)
    parent.send_signal(signal.SIGTSTP)
    everyone = [parent.pid, *workers]
    wait_until(lambda: all(state(pid) == "T" for pid in everyone), "not everyone stopped")
    paused = done_rows(journal)
    time.sleep(0.3)
    assert done_rows(journal) == paused  # nothing runs while the command is stopped
    parent.send_signal(signal.SIGCONT)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 0, err.decode()
    assert len(out.read_text().splitlines()) == 300


def test_more_processes_than_jobs_in_flight_is_refused(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _url, config, jobs, journal = a_batch(sandbox_process, tmp_path, 5)
    argv = arguments(config, jobs, journal, tmp_path / "results.jsonl", "--concurrency", "2")
    assert main([*argv, "--processes", "3"]) == 2
    assert "--concurrency must be at least --processes (3)" in capsys.readouterr().err
    # Capped at the number of jobs first: 5 processes asked, 2 jobs in flight, 1 job.
    (tmp_path / "one.jsonl").write_text(jobs.read_text().splitlines()[0] + "\n")
    argv = arguments(config, tmp_path / "one.jsonl", journal, tmp_path / "r1.jsonl")
    assert main([*argv, "--concurrency", "2", "--processes", "5"]) == 0


@pytest.mark.parametrize("when", ["while the workers start", "mid-batch"])
def test_ctrl_c_on_the_terminal_stops_the_command_cleanly(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path, when: str
) -> None:
    _url, config, jobs, journal = a_batch(sandbox_process, tmp_path, 300)
    argv = arguments(config, jobs, journal, tmp_path / "results.jsonl", "--processes", "2")
    # Its own session, as a shell's job: Ctrl-C sends SIGINT to the whole process group.
    starting = when.startswith("while")
    if starting:  # eight to start: the signal lands while the parent is still starting them
        argv += ["--processes", "8"]
    parent = spawn(
        [*CLI, *argv, "--concurrency", "8"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    workers = wait_for_workers(parent, 1 if starting else 2)
    if when == "mid-batch":
        wait_for_done(parent, journal, 10)
    os.killpg(parent.pid, signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    text = err.decode()
    assert parent.returncode == 130, text
    assert "interrupted" in text
    assert "Traceback" not in text
    assert "exited with code" not in text  # a stopped worker is not a failed one
    assert not any(alive(pid) for pid in workers)
    assert done_rows(journal) < 300


def test_a_stray_print_in_a_worker_does_not_break_the_results(
    sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    write_jobs(jobs, mchid, range(200))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # A print before the worker runs reaches the pipe its parent reads; one while it runs
    # (one job in flight per worker: the batch lasts seconds) must go to stderr instead.
    (hooks / "sitecustomize.py").write_text(
        "import threading\n"
        "print('hello from sitecustomize', flush=True)\n"
        "threading.Timer(1.5, print, ('hello while running',), {'flush': True}).start()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(hooks)}
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", "2")
    run = subprocess.run(
        [*CLI, *argv, "--concurrency", "2"], capture_output=True, timeout=120, check=False, env=env
    )
    text = run.stderr.decode()
    assert run.returncode == 0, text
    assert "printed: b'hello from sitecustomize'" in text
    assert "hello while running" in text
    assert "printed: b'hello while running'" not in text
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 200 and all(r["ok"] for r in results)


def test_a_jobs_file_named_like_an_option_and_more_processes_than_lines(
    sandbox_process: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    monkeypatch.chdir(tmp_path)
    write_jobs(tmp_path / "-jobs.jsonl", mchid, range(2))
    argv = ["onboard", "--config", str(config), "--journal", "j.db", "--progress", "none"]
    assert main([*argv, "--processes", "8", "--concurrency", "8", "--", "-jobs.jsonl"]) == 0
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(results) == 2 and all(r["ok"] for r in results)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_rows_that_cannot_be_identified_fail_alone(
    sandbox_process: tuple[str, Path], tmp_path: Path, processes: str
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    rows = [
        json.dumps(application(0, mchid)).encode(),
        b'{"name": "\\ud800"}',  # valid JSON, not valid Unicode: fails validation alone
        b"\xff\xfe not UTF-8",
        "\u3000 ".encode(),  # blank
        b"[[" * 5000,  # nested too deep to parse
        json.dumps(application(1, mchid)).encode(),
    ]
    jobs.write_bytes(b"\n".join(rows) + b"\n")
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", processes)
    run = subprocess.run([*CLI, *argv], capture_output=True, timeout=120, check=False)
    assert run.returncode == 1, run.stderr.decode()
    results = {r["job_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sum(r["ok"] for r in results.values()) == 2
    failed = {k for k, r in results.items() if not r["ok"]}
    surrogate = failed - {"line-3", "line-5"}  # identified by its content, like any row
    assert len(surrogate) == 1 and surrogate.pop().startswith("sha256:")
    assert all(r["ok"] or r["error_code"] == "VALIDATION_ERROR" for r in results.values())
    assert "5 jobs in" in run.stderr.decode()


def test_a_failed_process_is_named_and_fails_the_command(
    sandbox_process: tuple[str, Path],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, mchid, range(4))
    # Workers that die as they start (the parent checked everything it could before).
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "sitecustomize.py").write_text("import os\nos._exit(1)\n")
    monkeypatch.setenv("PYTHONPATH", str(crash))
    argv = arguments(
        config, jobs, tmp_path / "j.db", tmp_path / "results.jsonl", "--processes", "2"
    )
    assert main(argv) == 1
    err = capfd.readouterr().err
    assert "process 1 of 2 (--shard 0/2) exited with code 1" in err
    assert "process 2 of 2 (--shard 1/2) exited with code 1" in err
    assert "0 jobs in" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--processes", "0"], "--processes must be at least 1"),
        (["--processes", "2", "--shard", "0/2"], "leave out --shard"),
        (["--sign-threads", "-1"], "--sign-threads must be 0 or more"),
    ],
)
def test_cli_refuses_bad_process_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("{}\n")
    assert main(["onboard", str(jobs), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.jsonl").exists()


def test_processes_need_a_file_not_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onboard", "-", "--processes", "2"]) == 2
    assert "needs a regular file (not stdin or a pipe)" in capsys.readouterr().err


def test_a_bad_config_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("{}\n")
    bad = tmp_path / "merchant.toml"
    bad.write_text('mchid = "1900000109"\nsurprise = 1\n')
    for config, says in ((tmp_path / "absent.toml", "cannot read"), (bad, "surprise: is not")):
        assert main(["onboard", str(jobs), "--config", str(config), "--processes", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("--config: ")
        assert says in err
        assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "results.jsonl")


def test_a_command_imports_only_its_own_module() -> None:
    # Every worker of --processes is a fresh interpreter: the sandbox (aiohttp's server and
    # every route) is not what `onboard` needs, yet `--help` still lists every command.
    probe = (
        "import sys\n"
        "from wxpay_async.cli import main\n"
        "try:\n"
        "    main(['onboard', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('wxpay_async.sandbox', 'aiohttp.web')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip().splitlines()[-1] == "[]"
    assert "--processes N" in run.stdout
    listed = subprocess.run(
        [*CLI, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for command in ("demo", "sandbox", "onboard"):
        assert command in listed
