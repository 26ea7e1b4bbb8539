"""The onboard CLI end to end in subprocesses: SIGKILL mid-batch, resume, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from wxpay_async.cli import main

from .conftest import CLI, Spawn, admin, application, arguments, done_rows


def onboard(config: Path, jobs: Path, journal: Path, out: Path) -> list[str]:
    extra = ["--concurrency", "16", "--attempts", "12", "--sign-threads", "1"]
    return [*CLI, *arguments(config, jobs, journal, out, *extra)]


def test_sigkill_midway_then_resume_creates_each_once(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    total = 300
    jobs = tmp_path / "jobs.jsonl"
    with jobs.open("w") as f:
        for i in range(total):
            f.write(json.dumps({"job_id": f"job-{i}", "application": application(i, mchid)}) + "\n")
    admin(url, "/_sandbox/faults/rate", {"kind": "drop_after", "rate": 0.1})
    admin(url, "/_sandbox/faults/rate", {"kind": "system_error", "rate": 0.1})
    journal, out = tmp_path / "journal.db", tmp_path / "results.jsonl"

    first = spawn(
        onboard(config, jobs, journal, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while done_rows(journal) < 40:
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = done_rows(journal)
    assert killed_at < total, "the batch finished before it could be killed"

    second = subprocess.run(
        onboard(config, jobs, journal, out), capture_output=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr.decode()
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == total
    assert all(r["ok"] for r in results)
    assert sum(r["from_journal"] for r in results) >= killed_at
    state = admin(url, "/_sandbox/state")
    keys = [s["idempotency_key"] for s in state["submerchants"].values() if s["idempotency_key"]]
    assert len(keys) == total == len(set(keys))
    assert {r["sub_mchid"] for r in results} <= set(state["submerchants"])
    assert "300 jobs" in second.stderr.decode()


def test_two_shards_on_one_file_and_journal_create_each_job_once(
    spawn: Spawn, sandbox_process: tuple[str, Path], tmp_path: Path
) -> None:
    url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    total = 120
    jobs = tmp_path / "jobs.jsonl"
    # Content-hashed job ids (no job_id), and a blank line: shards split by job id.
    lines = [json.dumps(application(i, mchid)) for i in range(total)]
    jobs.write_text("\n".join([*lines[:60], "", *lines[60:]]) + "\n")
    journal = tmp_path / "journal.db"
    outs = [tmp_path / f"results-{k}.jsonl" for k in range(2)]
    shards = [
        spawn(
            [*onboard(config, jobs, journal, outs[k]), "--shard", f"{k}/2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for k in range(2)
    ]
    for shard in shards:
        _, err = shard.communicate(timeout=120)
        assert shard.returncode == 0, err.decode()
    results = [[json.loads(line) for line in out.read_text().splitlines()] for out in outs]
    assert all(r["ok"] for part in results for r in part)
    ids = [{r["job_id"] for r in part} for part in results]
    assert not ids[0] & ids[1]  # disjoint shares
    assert len(ids[0]) + len(ids[1]) == total
    assert min(len(ids[0]), len(ids[1])) > total // 4  # split by job id: about half each
    state = admin(url, "/_sandbox/state")
    keys = [s["idempotency_key"] for s in state["submerchants"].values() if s["idempotency_key"]]
    assert len(keys) == total == len(set(keys))


def test_a_shard_writes_its_own_results_file_by_default(
    sandbox_process: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(application(i, mchid)) + "\n" for i in range(5)))
    monkeypatch.chdir(tmp_path)
    common = ["onboard", str(jobs), "--config", str(config), "--journal", str(tmp_path / "j.db")]
    for k in (0, 1):
        assert main([*common, "--shard", f"{k}/2", "--progress", "none"]) == 0
    assert not (tmp_path / "results.jsonl").exists()
    shards = [(tmp_path / f"results-{k}-of-2.jsonl").read_text().splitlines() for k in (0, 1)]
    ids = [{json.loads(line)["job_id"] for line in lines} for lines in shards]
    assert len(ids[0] | ids[1]) == 5
    assert not ids[0] & ids[1]
    assert all(not json.loads(line)["from_journal"] for lines in shards for line in lines)


@pytest.mark.parametrize("shard", ["2/2", "-1/2", "1", "a/b", "0/0", "1_0/2_0", " 1/2"])
def test_cli_refuses_a_bad_shard(tmp_path: Path, shard: str) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("{}\n")
    with pytest.raises(SystemExit) as info:
        main(["onboard", str(jobs), "--shard", shard])
    assert info.value.code == 2


def test_cli_reports_failures_with_a_non_zero_exit(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    jobs = tmp_path / "jobs.jsonl"
    bad = application(1, mchid)
    del bad["business"]
    jobs.write_text(json.dumps(application(0, mchid)) + "\n" + json.dumps(bad) + "\nnot json\n\n")
    out = tmp_path / "results.jsonl"
    # In-process, so the command's own code is measured by coverage.
    assert main(onboard(config, jobs, tmp_path / "j.db", out)[len(CLI) :]) == 1
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["ok"] for r in results].count(True) == 1
    failed = {r["job_id"]: r for r in results if not r["ok"]}
    assert failed["line-3"]["error_code"] == "VALIDATION_ERROR"
    assert any(r["error_message"].startswith("business:") for r in failed.values())
    err = capsys.readouterr().err
    assert "VALIDATION_ERROR: 2" in err
    assert "3 jobs" in err


def test_cli_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["onboard", str(tmp_path / "missing.jsonl")]) == 2
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("{}\n")
    assert main(["onboard", str(jobs), "--concurrency", "0"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_help_lists_the_commands() -> None:
    run = subprocess.run([*CLI, "--help"], capture_output=True, timeout=30, check=True)
    text = run.stdout.decode()
    for command in ("demo", "sandbox", "onboard"):
        assert command in text
