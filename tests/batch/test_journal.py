"""The journal's group commit, through ``Journal.group_commit()``."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.sqlite_lock import another_writer
from wxpay_async.batch import Journal


def _prepare(journal: Journal, job_id: str) -> tuple[object, ...]:
    return (journal.prepared, job_id, "hash", f"key-{job_id}", b"{}", "PUB_KEY_ID_1")


async def test_writes_of_one_turn_are_committed_together_before_their_writers_resume(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as journal, Journal(path) as reader:
        group = journal.group_commit()
        seen: dict[str, object] = {}

        async def writer(job_id: str) -> None:
            await group.write(*_prepare(journal, job_id))  # type: ignore[arg-type]
            record = reader.get(job_id)  # another connection: committed rows only
            seen[job_id] = None if record is None else record.state

        await asyncio.gather(*(writer(f"job-{i}") for i in range(50)))
        assert seen == {f"job-{i}": "prepared" for i in range(50)}
        assert not journal.in_transaction


async def test_a_posted_write_is_reported_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as journal, Journal(path) as reader:
        seen: list[tuple[object, object, object]] = []

        def then(exc: BaseException | None, value: object) -> None:
            record = reader.get("a")  # another connection: committed rows only
            seen.append((exc, value, None if record is None else record.state))

        journal.group_commit().post(*_prepare(journal, "a"), then=then)  # type: ignore[arg-type]
        assert seen == []  # the poster goes on at once
        await asyncio.sleep(0)  # the flush runs on the next turn
        assert seen == [(None, True, "prepared")]


async def test_a_cancelled_writer_still_gets_its_row_committed(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        group = journal.group_commit()
        task = asyncio.create_task(group.write(*_prepare(journal, "a")))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # queued
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the flush runs on the next turn
        record = journal.get("a")
        assert record is not None and record.state == "prepared"
        assert record.idempotency_key == "key-a"


async def test_a_failing_write_is_undone_whole_and_raised_to_its_writer_alone(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.db") as journal:
        group = journal.group_commit()

        def half_then_fail(job_id: str) -> None:
            journal.prepared(job_id, "hash", "key", b"{}", "PUB_KEY_ID_1")  # first statement
            raise sqlite3.IntegrityError("second statement failed")

        results = await asyncio.gather(
            group.write(*_prepare(journal, "before")),  # type: ignore[arg-type]
            group.write(half_then_fail, "broken"),
            group.write(*_prepare(journal, "after")),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert results[0] is True and results[2] is True  # what prepared() returned
        assert isinstance(results[1], sqlite3.IntegrityError)
        assert journal.get("broken") is None  # its first statement was rolled back too
        assert journal.get("before") is not None and journal.get("after") is not None
        assert journal.counts() == {"prepared": 2}
        assert not journal.in_transaction


class _CommitFails(Journal):
    def commit(self) -> None:
        raise sqlite3.OperationalError("disk I/O error")


async def test_a_failed_commit_is_raised_to_every_writer_and_nothing_stays(
    tmp_path: Path,
) -> None:
    with _CommitFails(tmp_path / "j.db") as journal:
        group = journal.group_commit()
        results = await asyncio.gather(
            *(group.write(*_prepare(journal, f"job-{i}")) for i in range(5)),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        assert not journal.in_transaction
    with Journal(tmp_path / "j.db") as journal:
        assert journal.counts() == {}


async def test_a_posted_write_whose_commit_fails_is_reported_the_error(tmp_path: Path) -> None:
    with _CommitFails(tmp_path / "j.db") as journal:
        errors: list[BaseException | None] = []
        journal.group_commit().post(
            *_prepare(journal, "a"),  # type: ignore[arg-type]
            then=lambda exc, _value: errors.append(exc),
        )
        await asyncio.sleep(0)
        assert len(errors) == 1 and isinstance(errors[0], sqlite3.OperationalError)


async def test_a_callback_that_raises_leaves_the_other_writers_of_its_turn_settled(
    tmp_path: Path,
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    with Journal(tmp_path / "j.db") as journal:
        group = journal.group_commit()

        def broken(_exc: BaseException | None, _value: object) -> None:
            raise RuntimeError("a bug in the callback")

        async def both() -> object:  # queued in one turn: one flush runs them together
            group.post(*_prepare(journal, "a"), then=broken)  # type: ignore[arg-type]
            return await group.write(*_prepare(journal, "b"))  # type: ignore[arg-type]

        assert await asyncio.wait_for(both(), timeout=5) is True
        assert journal.counts() == {"prepared": 2}
    loop.set_exception_handler(None)
    assert [type(c.get("exception")) for c in reported] == [RuntimeError]


async def test_a_posted_write_that_fails_before_a_failed_commit_is_reported_once(
    tmp_path: Path,
) -> None:
    with _CommitFails(tmp_path / "j.db") as journal:
        calls: list[BaseException | None] = []

        def fails(_job_id: str) -> None:
            raise sqlite3.IntegrityError("constraint failed")

        journal.group_commit().post(fails, "a", then=lambda exc, _value: calls.append(exc))
        await asyncio.sleep(0)
        assert len(calls) == 1 and isinstance(calls[0], sqlite3.Error)


def test_a_failure_after_sending_never_overwrites_a_finished_job(tmp_path: Path) -> None:
    # Another run finished the job (same key) while this run's send of it failed.
    with Journal(tmp_path / "j.db") as journal:
        journal.prepared("job", "hash", "key", b"{}", "PUB_KEY_ID_1")
        journal.done("job", "2000000042", "Under Review")
        written = journal.failed(
            "job", "hash", "PARAM_ERROR", "bad", retryable=False, keep_request=True
        )
        record = journal.get("job")
    assert written is False
    assert record is not None and (record.state, record.sub_mchid) == ("done", "2000000042")


def test_a_failure_before_sending_never_erases_another_runs_claim(tmp_path: Path) -> None:
    # Runs A and B both read "no row". A claims the job and sends it; B fails before sending
    # (say its certificate download failed). B's failure must not wipe A's key and bytes: a
    # later resume would then send the job under a new key, onboarding it twice.
    path = tmp_path / "j.db"
    with Journal(path) as a, Journal(path) as b:
        assert a.prepared("job", "hash", "key-a", b'{"a":1}', "PUB", expected_runs=0)
        assert not b.failed(
            "job", "hash", "TransportError", "no certificates", retryable=True,
            keep_request=False, expected_runs=0,
        )  # fmt: skip
        record = a.get("job")
        assert record is not None and record.state == "prepared"
        assert (record.idempotency_key, record.body) == ("key-a", b'{"a":1}')
        # B had read the row at runs=1 (say A's earlier failure): now the claim is B's to make.
        assert b.failed(
            "job", "hash", "VALIDATION_ERROR", "bad", retryable=False, keep_request=False,
            expected_runs=1,
        )  # fmt: skip
        record = a.get("job")
        assert record is not None and record.state == "failed"
        assert record.idempotency_key is None and record.body is None  # nothing was sent


def test_a_failure_after_sending_keeps_the_key_and_bytes_for_the_resume(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.prepared("job", "hash", "key-a", b"{}", "PUB", expected_runs=0)
        assert journal.failed(
            "job", "hash", "SYSTEM_ERROR", "busy", retryable=True, keep_request=True
        )
        record = journal.get("job")
        assert record is not None and record.state == "failed" and record.retryable
        assert (record.idempotency_key, record.body, record.wechatpay_serial) == (
            "key-a",
            b"{}",
            "PUB",
        )


def test_a_new_journal_opens_while_another_connection_holds_the_file(tmp_path: Path) -> None:
    """Two shards opening one new journal at the same moment: switching the file to WAL needs
    it to itself, and SQLite refuses at once rather than waiting. The open waits instead."""
    path = tmp_path / "j.db"
    with another_writer(path, release_after=0.2), Journal(path) as journal:
        journal.begin()
        journal.prepared("job-1", "hash", "key-1", b"{}", "PUB_KEY_ID_1")
        journal.commit()
        record = journal.get("job-1")
        assert record is not None and record.idempotency_key == "key-1"
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_journal_still_locked_after_the_busy_timeout_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.db"
    monkeypatch.setattr("wxpay_async.batch._journal._BUSY_SECONDS", 0.1)
    with another_writer(path), pytest.raises(sqlite3.OperationalError, match="locked"):
        Journal(path)
