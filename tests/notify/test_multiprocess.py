"""Processes sharing one SQLite file or one Redis never both run a handler."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from wxpay_async.notify import Notification, Outcome

from ._stores import make_inbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "redis"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """``(store, where, prefix)`` for a store several processes can share."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return "redis", url, f"test:{uuid.uuid4().hex}:"
    return "sqlite", str(tmp_path), ""


def spawn(mode: str, shared: tuple[str, str, str], tmp: Path, name: str, *extra: str) -> Any:
    store, where, prefix = shared
    command = [sys.executable, "-m", "tests.notify._worker", mode, store, where]
    command += [str(tmp / "out.txt"), str(tmp / f"{name}.ready"), str(tmp / "go")]
    command += ["--prefix", prefix or "test:", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def wait_for(path: Path, processes: list[Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert all(p.poll() is None for p in processes), "a worker exited early"
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.01)


def test_two_processes_never_both_run_the_handler(
    shared: tuple[str, str, str], tmp_path: Path
) -> None:
    count = 60
    workers = [
        spawn("race", shared, tmp_path, "w0", "--count", str(count)),
        spawn("race", shared, tmp_path, "w1", "--count", str(count), "--reverse"),
    ]
    try:
        for i in range(2):
            wait_for(tmp_path / f"w{i}.ready", workers)
        (tmp_path / "go").touch()
        reports = [json.loads(w.communicate(timeout=60)[0]) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert all(w.returncode == 0 for w in workers)
    runs = collections.Counter(
        line.split()[1] for line in (tmp_path / "out.txt").read_text().splitlines()
    )
    assert runs == {f"EV-{i}": 1 for i in range(count)}
    assert sum(r.get("processed", 0) for r in reports) == count
    assert sum(r.get("duplicate", 0) for r in reports) == count


async def test_claim_of_a_killed_process_expires(
    shared: tuple[str, str, str], tmp_path: Path
) -> None:
    store, where, prefix = shared
    worker = spawn("hang", shared, tmp_path, "h", "--lease", "0.6")
    try:
        wait_for(tmp_path / "out.txt", [worker])  # the handler started: the claim is held
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    options = {"lease": 0.6, "prefix": prefix} if store == "redis" else {"lease": 0.6}
    calls: list[str] = []

    async def handler(n: Notification) -> None:
        calls.append(n.id)

    notification = Notification(
        id="EV-crash",
        create_time=dt.datetime(2024, 5, 20, tzinfo=dt.UTC),
        event_type="PAYSCORE.USER_OPEN_SERVICE",
        resource_type="encrypt-resource",
    )
    async with make_inbox(store, where, wait=0, **options) as inbox:
        assert await inbox.process(notification, handler) is Outcome.IN_PROGRESS
    started = time.monotonic()
    async with make_inbox(store, where, wait=5.0, **options) as inbox:
        assert await inbox.process(notification, handler) is Outcome.PROCESSED
    assert time.monotonic() - started < 1.5  # taken over once the lease ran out
    assert calls == ["EV-crash"]
