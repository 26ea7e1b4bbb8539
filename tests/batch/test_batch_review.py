"""The batch's guarantees at their edges: files the command must not overwrite, ids and writes
that fail alone, a corrected row after a refused re-send, streams read once, the wire forms the
spec leaves open, and arguments checked before anything opens."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import threading
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from wxpay_async import RetryPolicy, ValidationError, WxPayClient
from wxpay_async.batch import Job, Journal, onboard_many
from wxpay_async.batch_cli import _worker_command, configure
from wxpay_async.cli import main
from wxpay_async.products import media
from wxpay_async.sandbox import Sandbox

from .conftest import application, arguments
from .test_cli_processes import write_jobs


@pytest.mark.parametrize("target", ["jobs", "journal", "journal-wal"])
def test_out_may_not_be_the_jobs_file_or_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    jobs, journal = tmp_path / "jobs.jsonl", tmp_path / "j.db"
    jobs.write_text('{"name": "x"}\n')
    Journal(journal).close()
    before = {path: path.read_bytes() for path in (jobs, journal)}
    out = {"jobs": jobs, "journal": journal, "journal-wal": tmp_path / "j.db-wal"}[target]
    assert main(["onboard", str(jobs), "--journal", str(journal), "--out", str(out)]) == 2
    assert "would destroy it" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in (jobs, journal)} == before


def test_a_journal_that_is_not_one_is_refused_before_the_results_file_is_touched(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _url, config = sandbox_process
    jobs, out = tmp_path / "jobs.jsonl", tmp_path / "results.jsonl"
    write_jobs(jobs, tomllib.loads(config.read_text())["mchid"], range(1))
    out.write_text("earlier results\n")
    not_a_journal, foreign = tmp_path / "notes.txt", tmp_path / "other.db"
    not_a_journal.write_text("plain text, not SQLite\n" * 100)
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, title TEXT)")
    for journal in (not_a_journal, foreign):
        assert main(arguments(config, jobs, journal, out)) == 2
        err = capsys.readouterr().err
        assert err.startswith("--journal:") and err.count("\n") == 1  # one line, no traceback
    assert out.read_text() == "earlier results\n"


async def test_a_job_id_that_cannot_be_stored_fails_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    mchid = sandbox.credentials.mchid
    jobs = [Job(job_id="bad-\ud800", application=application(0, mchid))]
    jobs.append(Job(job_id="good", application=application(1, mchid)))
    async with sandbox.client() as client:
        results = {r.job_id: r async for r in onboard_many(client, jobs, journal=tmp_path / "j.db")}
    assert results["good"].ok
    bad = results["bad-\\ud800"]  # its result names it, escaped
    assert (bad.ok, bad.error_code, bad.retryable) == (False, "VALIDATION_ERROR", False)
    assert "job_id" in (bad.error_message or "")


async def test_content_with_a_lone_surrogate_fails_alone(sandbox: Sandbox, tmp_path: Path) -> None:
    mchid = sandbox.credentials.mchid
    broken = application(0, mchid)
    broken["name"] = "Fruit \ud800 Limited"
    async with sandbox.client() as client:
        rows = [broken, application(1, mchid)]
        results = [r async for r in onboard_many(client, rows, journal=tmp_path / "j.db")]
    assert sorted((r.ok, r.error_code) for r in results) == [
        (False, "VALIDATION_ERROR"),
        (True, None),
    ]


async def test_a_write_that_cannot_be_bound_fails_alone(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    group = journal.group_commit()
    try:
        writes = [
            group.write(journal.prepared, job_id, "hash", "key", b"{}", "SERIAL", expected_runs=0)
            for job_id in ("first", "bad-\ud800", "third")
        ]
        outcomes = await asyncio.gather(*writes, return_exceptions=True)
    finally:
        journal.close()
    assert outcomes[0] is True and outcomes[2] is True  # committed although a neighbour failed
    assert isinstance(outcomes[1], UnicodeEncodeError)
    with Journal(tmp_path / "j.db") as reopened:
        assert {r.job_id for r in reopened.records()} == {"first", "third"}


async def test_a_corrected_row_is_tried_after_its_stored_request_is_refused(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    wrong = application(0, "1900000000")  # passes every client check; WeChat refuses it
    corrected = application(0, mchid)
    journal = tmp_path / "j.db"
    before = sandbox.submerchant_count

    async def run(content: dict[str, object]) -> tuple[bool, str | None, bool]:
        async with sandbox.client(retry=RetryPolicy(attempts=1)) as client:
            jobs = [Job(job_id="J", application=content)]
            [result] = [r async for r in onboard_many(client, jobs, journal=journal)]
        return result.ok, result.error_code, result.from_journal

    sandbox.faults.queue("POST /hk/v3/merchants", "system_error")
    assert await run(wrong) == (False, "SYSTEM_ERROR", False)  # retryable: stored for a re-send
    # The corrected row first re-sends what WeChat may have seen (the stored bytes), which
    # WeChat refuses for good; that refusal belongs to the old content, not the corrected one.
    assert await run(corrected) == (False, "INVALID_REQUEST", False)
    assert await run(corrected) == (True, None, False)
    assert sandbox.submerchant_count == before + 1  # the corrected job's, once


def test_a_piped_jobs_file_is_read_once(
    sandbox_process: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _url, config = sandbox_process
    mchid = tomllib.loads(config.read_text())["mchid"]
    source, fifo, out = tmp_path / "jobs.jsonl", tmp_path / "jobs.fifo", tmp_path / "out.jsonl"
    write_jobs(source, mchid, range(3))
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(source.read_bytes()))
    feeder.start()
    try:
        assert main(arguments(config, fifo, tmp_path / "j.db", out)) == 0
    finally:
        feeder.join(timeout=10)
    assert len(out.read_text().splitlines()) == 3
    assert main(arguments(config, fifo, tmp_path / "j2.db", out, "--processes", "2")) == 2
    assert "needs a regular file" in capsys.readouterr().err


async def test_store_photos_as_and_padding_reach_the_wire(sandbox: Sandbox, tmp_path: Path) -> None:
    mchid = sandbox.credentials.mchid
    row = application(0, mchid)
    async with sandbox.client() as client:
        photo = await _photo(client)
        row["business"]["store_photos"] = [photo]  # type: ignore[index]
        results = [
            r
            async for r in onboard_many(
                client,
                [row],
                journal=tmp_path / "j.db",
                store_photos_as="array",
                padding="PKCS1V15",
            )
        ]
    assert results[0].ok, results[0]
    [create] = [r for r in sandbox.requests if r.path == "/hk/v3/merchants"]
    assert json.loads(create.body)["business"]["store_photos"] == [photo]


async def _photo(client: WxPayClient) -> str:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    return (await media.upload_image(client, "store.png", png)).media_id


def test_the_command_forwards_the_wire_forms_to_its_workers() -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(
        ["jobs.jsonl", "--padding", "oaep", "--store-photos-as", "array", "--processes", "2"]
    )
    command = _worker_command(args, 0, 2)
    assert "--padding=oaep" in command and "--store-photos-as=array" in command


@pytest.mark.parametrize("concurrency", [2.5, "4", None, True, 0])
async def test_concurrency_must_be_a_positive_integer(
    sandbox: Sandbox, tmp_path: Path, concurrency: object
) -> None:
    journal = tmp_path / "j.db"

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(100):
            yield application(i, sandbox.credentials.mchid)

    async with sandbox.client() as client:
        with pytest.raises(ValidationError) as info:
            async for _ in onboard_many(client, rows(), concurrency=concurrency, journal=journal):  # type: ignore[arg-type]
                pass
    assert info.value.field == "concurrency"
    assert not journal.exists()  # refused before the journal opened
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "wxpay-batch-reader"]


@pytest.mark.parametrize("synchronous", ["FUL", "OFF", "yes"])
def test_journal_durability_is_normal_or_full(tmp_path: Path, synchronous: str) -> None:
    with pytest.raises(ValidationError) as info:
        Journal(tmp_path / "j.db", synchronous=synchronous)  # type: ignore[arg-type]
    assert info.value.field == "synchronous"


def test_a_jobs_repr_shows_no_contact() -> None:
    job = Job(job_id="J", application=application(0, "1900000109"))
    assert "Contact 0" not in repr(job) and "owner0@" not in repr(job)
    assert "job_id='J'" in repr(job)


async def test_retry_failed_sends_a_refused_job_again_once_its_cause_is_fixed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A wrong private key: WeChat refuses the request (401 SIGN_ERROR), which is final for the
    # job's content. Once the key is fixed, only retry_failed sends it again.
    journal = tmp_path / "j.db"
    row = application(0, sandbox.credentials.mchid)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = attrs.evolve(sandbox.credentials, private_key=other_key)
    before = sandbox.submerchant_count

    async def run(retry_failed: bool, **client: Any) -> tuple[bool, str | None, bool]:
        async with sandbox.client(retry=RetryPolicy(attempts=1), **client) as c:
            results = onboard_many(c, [row], journal=journal, retry_failed=retry_failed)
            [result] = [r async for r in results]
        return result.ok, result.error_code, result.from_journal

    assert await run(False, credentials=wrong) == (False, "SIGN_ERROR", False)
    assert await run(False) == (False, "SIGN_ERROR", True)  # final: not sent again
    assert sandbox.submerchant_count == before
    assert await run(True) == (True, None, False)
    assert await run(True) == (True, None, True)  # done stays done
    assert sandbox.submerchant_count == before + 1
    creates = [r for r in sandbox.requests if r.path == "/hk/v3/merchants"]
    # The retried request is the refused one: the same key over the same bytes.
    assert len(creates) == 2
    assert creates[0].headers["Idempotency-Key"] == creates[1].headers["Idempotency-Key"]
    assert creates[0].body == creates[1].body


async def test_retry_failed_must_be_a_bool(sandbox: Sandbox, tmp_path: Path) -> None:
    async with sandbox.client() as client:
        with pytest.raises(ValidationError, match="retry_failed"):
            [r async for r in onboard_many(client, [], journal=tmp_path / "j.db", retry_failed=1)]  # type: ignore[arg-type]


def test_the_command_forwards_retry_failed_to_its_workers() -> None:
    parser = argparse.ArgumentParser()
    configure(parser)
    for given, expected in ((["--retry-failed"], True), ([], False)):
        args = parser.parse_args(["jobs.jsonl", "--processes", "2", *given])
        assert ("--retry-failed" in _worker_command(args, 1, 2)) is expected


async def test_retry_failed_tries_each_failure_once_per_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Failures this run writes are final for it: a job listed twice is not sent twice.
    journal = tmp_path / "j.db"
    row = application(0, sandbox.credentials.mchid)
    invalid = application(1, sandbox.credentials.mchid)
    invalid["name"] = ""
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = attrs.evolve(sandbox.credentials, private_key=other_key)

    async def run() -> list[tuple[str | None, bool]]:
        async with sandbox.client(retry=RetryPolicy(attempts=1), credentials=wrong) as c:
            jobs = [row, row, invalid, invalid]
            results = onboard_many(c, jobs, concurrency=1, journal=journal, retry_failed=True)
            return [(r.error_code, r.from_journal) async for r in results]

    first = [("SIGN_ERROR", False), ("SIGN_ERROR", True)]
    first += [("VALIDATION_ERROR", False), ("VALIDATION_ERROR", True)]
    assert await run() == first
    assert await run() == first  # the next run tries each again, once: invalid rows included
    creates = [r for r in sandbox.requests if r.path == "/hk/v3/merchants"]
    assert len(creates) == 2


def test_a_resend_is_a_claim(tmp_path: Path) -> None:
    # Two runs read the same refused row; the one that claims it first sends. The other's
    # re-send of the stored request must not go out beside the first one's new key.
    with Journal(tmp_path / "j.db") as journal:
        journal.prepared("J", "h1", "key1", b"{}", "serial")
        journal.failed("J", "h1", "SIGN_ERROR", "refused", retryable=False, keep_request=True)
        seen = journal.get("J")
        assert seen is not None
        assert journal.prepared("J", "h2", "key2", b"{}", "serial", expected_runs=seen.runs)
        assert not journal.resending("J", expected_runs=seen.runs)
        record = journal.get("J")
        assert record is not None
        assert (record.idempotency_key, record.runs) == ("key2", 2)
