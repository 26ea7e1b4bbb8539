from __future__ import annotations

import contextlib
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wxpay_async.sandbox import Sandbox


def application(i: int, sp_mchid: str) -> dict[str, Any]:
    """A valid HK onboarding application, distinct per ``i`` (plaintext contact)."""
    return {
        "sp_appid": "wxd678efh567hg6787",
        "sp_mchid": sp_mchid,
        "name": f"Fruit Store {i} Limited",
        "shortname": f"Fruit {i}",
        "office_phone": "+85223456789",
        "contact": {
            "name": f"Contact {i}",
            "phone": "+85291234567",
            "email": f"owner{i}@fruit.example",
        },
        "business_category": 343,
        "merchant_country_code": "344",
        "merchant_type": "ENTERPRISE",
        "registration_certificate_number": f"5555-{i:04d}",
        "registration_certificate_date": "PERMANENT",
        "business": {"business_type": "ONLINE", "mcc": "5344", "website": "https://fruit.example"},
        "director": {"name": "Tom", "number": "1234567890"},
    }


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox.start(key_mode="public_key", seed=7, time_scale=0.001) as sb:
        yield sb


CLI = [sys.executable, "-m", "wxpay_async.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def admin(url: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    identity = tmp_path / "identity"
    log = (tmp_path / "sandbox.log").open("wb")  # a file: a pipe nobody reads could fill up
    proc = subprocess.Popen(
        [
            *CLI,
            "sandbox",
            "--port",
            str(port),
            "--identity",
            str(identity),
            "--latency",
            "0.02",
            "--seed",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            admin(url, "/_sandbox/identity")
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                raise RuntimeError((tmp_path / "sandbox.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield url, identity / "merchant.toml"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def done_rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(journal)) as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs WHERE state='done'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``subprocess.Popen``, with every process killed and its pipes closed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen(command, **options))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def arguments(config: Path, jobs: Path, journal: Path, out: Path, *extra: str) -> list[str]:
    """``onboard`` options for a sandbox batch; ``extra`` goes last."""
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
