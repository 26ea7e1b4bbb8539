"""``wxpay-async onboard --processes N``: one batch over N worker processes, merged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from wxpay_async.cli import main

from .conftest import CLI, admin, application, done_rows


def write_jobs(path: Path, mchid: str, numbers: range, *, head: list[str] | None = None) -> None:
    lines = [*(head or []), *(json.dumps(application(i, mchid)) for i in numbers)]
    path.write_text("".join(line + "\n" for line in lines))


def arguments(config: Path, jobs: Path, journal: Path, out: Path, *extra: str) -> list[str]:
    return [
        "onboard",
        str(jobs),
        "--config",
        str(config),
        "--journal",
        str(journal),
        "--out",
        str(out),
        "--progress",
        "lines",
        *extra,
    ]


def server_keys(url: str) -> list[str]:
    state = admin(url, "/_sandbox/state")
    return [s["idempotency_key"] for s in state["submerchants"].values() if s["idempotency_key"]]


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


def test_every_process_runs_its_share_and_failures_are_summed(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    # Lines 1..3 go to processes 1, 2 and 3 of three: each must report its bad line.
    write_jobs(jobs, mchid, range(12), head=["not json", "[1, 2", "{oops"])
    argv = arguments(config, jobs, tmp_path / "j.db", out, "--processes", "3")
    assert main(argv) == 1
    results = {r["job_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(results) == 15
    for bad in ("line-1", "line-2", "line-3"):
        assert results[bad]["error_code"] == "VALIDATION_ERROR"
    assert sum(r["ok"] for r in results.values()) == 12
    err = capsys.readouterr().err
    assert "15 jobs in" in err
    assert "12 ok, 3 failed" in err
    assert "VALIDATION_ERROR: 3" in err


def test_sigterm_stops_every_process_and_a_rerun_finishes_each_job_once(
    sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    total = 400
    jobs, journal = tmp_path / "jobs.jsonl", tmp_path / "j.db"
    write_jobs(jobs, mchid, range(total))
    admin(url, "/_sandbox/faults/rate", {"kind": "drop_after", "rate": 0.1})
    first_out, second_out = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    argv = arguments(config, jobs, journal, first_out, "--processes", "2", "--attempts", "12")
    first = subprocess.Popen(
        [*CLI, *argv, "--concurrency", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while done_rows(journal) < 30:
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.02)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    stopped_at = done_rows(journal)
    assert stopped_at < total, "the batch finished before it could be stopped"
    time.sleep(0.3)
    assert done_rows(journal) == stopped_at  # no worker outlived its parent
    reported = [json.loads(line) for line in first_out.read_text().splitlines()]
    assert reported and all(r["ok"] for r in reported)

    argv = arguments(config, jobs, journal, second_out, "--processes", "2", "--attempts", "12")
    second = subprocess.run([*CLI, *argv], capture_output=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr.decode()
    results = [json.loads(line) for line in second_out.read_text().splitlines()]
    assert len(results) == total
    assert all(r["ok"] for r in results)
    assert sum(r["from_journal"] for r in results) >= stopped_at
    keys = server_keys(url)
    assert len(keys) == total == len(set(keys))


def test_a_worker_hands_its_parent_counts_then_the_result_line(
    sandbox_process: tuple[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # What one process of --processes writes to its stdout (run here in-process).
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, mchid, range(3), head=["not json"])
    argv = arguments(config, jobs, tmp_path / "j.db", tmp_path / "unused.jsonl")
    assert main([*argv, "--shard", "0/1", "--worker"]) == 0  # failed jobs are the parent's call
    captured = capfd.readouterr()
    assert captured.err == ""  # no progress line, no summary of its own
    assert not (tmp_path / "unused.jsonl").exists()
    rows = [line.split("\t", 4) for line in captured.out.splitlines()]
    assert len(rows) == 4
    for flight, ok, from_journal, code, line in rows:
        result = json.loads(line)
        assert 0 <= int(flight) <= 32
        assert (ok, from_journal) == (str(int(result["ok"])), str(int(result["from_journal"])))
        assert code == (result["error_code"] or "")
    assert sorted(row[3] for row in rows) == ["", "", "", "VALIDATION_ERROR"]


def test_a_failed_process_is_named_and_fails_the_command(
    sandbox_process: tuple[str, Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    write_jobs(jobs, mchid, range(4))
    journal = tmp_path / "missing-directory" / "j.db"  # no worker can open it
    argv = arguments(config, jobs, journal, tmp_path / "results.jsonl", "--processes", "2")
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
    assert "needs a file, not stdin" in capsys.readouterr().err


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
