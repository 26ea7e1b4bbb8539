"""onboard_many against the sandbox: exactly once under faults, resumable, per-job errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from wxpay_async import RetryPolicy, converter
from wxpay_async.batch import Job, JobResult, Journal, Progress, onboard_many
from wxpay_async.batch._journal import JobRecord
from wxpay_async.products.hk_merchants import SubMerchantApplication
from wxpay_async.sandbox import Sandbox

from .conftest import application

PATH = "/hk/v3/merchants"


async def collect(agen: Any) -> list[JobResult]:
    return [result async for result in agen]


def assert_exactly_once(sb: Sandbox, results: list[JobResult], expected: int) -> None:
    ok = [r for r in results if r.ok]
    assert len(ok) == expected
    assert len({r.sub_mchid for r in ok}) == expected
    assert sb.submerchant_count == expected
    for r in ok:
        assert r.idempotency_key is not None
        assert sb.created_count(r.idempotency_key) == 1


async def test_thousand_jobs_under_faults_are_each_created_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.faults.set_rate("system_error", 0.2)
    sandbox.faults.set_rate("drop_after", 0.1)
    mchid = sandbox.credentials.mchid
    seen: list[Progress] = []
    async with sandbox.client(retry=RetryPolicy(attempts=12, sleep=False)) as client:
        results = await collect(
            onboard_many(
                client,
                (application(i, mchid) for i in range(1000)),
                concurrency=32,
                journal=tmp_path / "j.db",
                on_progress=seen.append,
            )
        )
    assert_exactly_once(sandbox, results, 1000)
    faults = Counter(r.fault for r in sandbox.requests if r.path == PATH)
    assert faults["system_error"] > 100 and faults["drop_after"] > 50  # faults really happened
    with Journal(tmp_path / "j.db") as journal:
        assert journal.counts() == {"done": 1000}
        stored = {rec.job_id: rec.sub_mchid for rec in journal.records()}
    assert stored == {r.job_id: r.sub_mchid for r in results}
    assert seen[-1].done == 1000 and seen[-1].failed == 0


async def test_invalid_rows_are_recorded_and_the_rest_succeed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    rows: list[Any] = []
    for i in range(150):
        row = application(i, mchid)
        if i % 3 == 0:  # 50 broken rows, each broken differently
            kind = (i // 3) % 5
            if kind == 0:
                del row["name"]
            elif kind == 1:
                row["contact"]["email"] = "x" * 300
            elif kind == 2:
                row["merchant_type"] = "COMPANY"
            elif kind == 3:
                row["shortname"] = "s" * 65
            else:
                row["unknown_field"] = 1
        rows.append(row)
    async with sandbox.client() as client:
        results = await collect(onboard_many(client, rows, journal=tmp_path / "j.db"))
    failed = [r for r in results if not r.ok]
    assert len(failed) == 50
    assert {r.error_code for r in failed} == {"VALIDATION_ERROR"}
    assert all(r.idempotency_key is None and not r.retryable for r in failed)
    fields = {r.error_message.split(":")[0] for r in failed if r.error_message}
    assert fields == {"name", "contact.email", "merchant_type", "shortname", "unknown_field"}
    assert_exactly_once(sandbox, results, 100)
    # Nothing invalid reached the sandbox.
    assert sum(1 for r in sandbox.requests if r.path == PATH) == 100


async def test_rerun_skips_finished_and_resends_in_flight_with_the_same_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    jobs = [Job(job_id=f"job-{i}", application=application(i, mchid)) for i in range(40)]
    journal = tmp_path / "j.db"
    # Every answer is lost after WeChat processed it: the first run is "killed" mid-way with
    # requests in flight that the sandbox has already acted on.
    sandbox.faults.set_rate("delay", 1.0, seconds=0.05)
    async with sandbox.client(retry=RetryPolicy(attempts=1)) as client:
        first: list[JobResult] = []
        agen = onboard_many(client, jobs, concurrency=8, journal=journal)
        async for result in agen:
            first.append(result)
            if len(first) == 10:
                break
        await agen.aclose()
    await asyncio.sleep(0.1)  # in-flight requests land in the sandbox after the "crash"
    with Journal(journal) as j:
        prepared = {r.job_id: r for r in j.records() if r.state == "prepared"}
        finished = {r.job_id for r in j.records() if r.state == "done"}
    # Every yielded result was committed first; a few more may have finished unseen.
    assert {r.job_id for r in first} <= finished
    assert prepared, "the interrupted run should leave prepared jobs behind"
    sandbox.faults.clear()
    async with sandbox.client() as client:
        second = await collect(onboard_many(client, jobs, concurrency=8, journal=journal))
    assert len(second) == 40
    assert {r.job_id for r in second if r.from_journal} == finished
    by_id = {r.job_id: r for r in second}
    for job_id, record in prepared.items():
        assert by_id[job_id].idempotency_key == record.idempotency_key
    assert_exactly_once(sandbox, second, 40)


async def test_retryable_failures_are_retried_on_the_next_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    jobs = [application(i, mchid) for i in range(5)]
    sandbox.faults.queue(f"POST {PATH}", "system_error", times=5)
    async with sandbox.client(retry=RetryPolicy.none()) as client:
        first = await collect(onboard_many(client, jobs, journal=tmp_path / "j.db"))
        assert [r.error_code for r in first] == ["SYSTEM_ERROR"] * 5
        assert all(r.retryable for r in first)
        second = await collect(onboard_many(client, jobs, journal=tmp_path / "j.db"))
    assert all(r.ok and not r.from_journal for r in second)
    assert {r.idempotency_key for r in first} == {r.idempotency_key for r in second}
    assert_exactly_once(sandbox, second, 5)


async def test_business_errors_are_final_until_the_row_changes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    bad = application(1, mchid)
    bad["sp_mchid"] = "1234567890"  # not the calling institution: refused by the service
    async with sandbox.client() as client:
        (first,) = await collect(
            onboard_many(client, [Job(job_id="a", application=bad)], journal=tmp_path / "j.db")
        )
        assert not first.ok and not first.retryable and first.error_code
        (again,) = await collect(
            onboard_many(client, [Job(job_id="a", application=bad)], journal=tmp_path / "j.db")
        )
        assert again.from_journal and again.error_code == first.error_code
        fixed = application(1, mchid)
        (third,) = await collect(
            onboard_many(client, [Job(job_id="a", application=fixed)], journal=tmp_path / "j.db")
        )
    assert third.ok and not third.from_journal


async def test_duplicate_rows_run_once_and_async_iterables_stream(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid

    async def rows() -> Any:
        for i in range(6):
            yield application(i % 3, mchid)

    async with sandbox.client() as client:
        results = await collect(
            onboard_many(client, rows(), concurrency=1, journal=tmp_path / "j.db")
        )
    assert len(results) == 6
    assert sum(r.ok and not r.from_journal for r in results) == 3
    assert_exactly_once(sandbox, [r for r in results if not r.from_journal], 3)


async def test_a_copy_right_after_its_job_gets_the_stored_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # One worker: the copy is taken the moment its job has finished, before the job's row is
    # committed. It waits for that commit and reports the stored result, not DUPLICATE_JOB.
    mchid = sandbox.credentials.mchid
    rows = [application(0, mchid), application(0, mchid), application(1, mchid)]
    async with sandbox.client() as client:
        results = await collect(
            onboard_many(client, rows, concurrency=1, journal=tmp_path / "j.db")
        )
    assert [(r.ok, r.from_journal) for r in results] == [(True, False), (True, True), (True, False)]
    assert results[0].idempotency_key == results[1].idempotency_key
    assert_exactly_once(sandbox, [results[0], results[2]], 2)


async def test_a_later_copy_that_would_fail_validation_gets_the_stored_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # On a new journal nothing is looked up before a job is prepared; a copy of a finished
    # job (here under the same job id, with content that fails validation) must still find
    # the finished row, not record a failure over it.
    mchid = sandbox.credentials.mchid
    bad = application(0, mchid)
    bad["name"] = ""

    first_reported = asyncio.Event()

    async def rows() -> Any:
        yield Job(job_id="shop", application=application(0, mchid))
        await first_reported.wait()  # the first copy's row is committed before it is reported
        yield Job(job_id="shop", application=bad)

    path = tmp_path / "j.db"
    async with sandbox.client() as client:
        results = await collect(
            onboard_many(
                client,
                rows(),
                concurrency=2,
                journal=path,
                on_progress=lambda _progress: first_reported.set(),
            )
        )
    assert [(r.ok, r.from_journal) for r in results] == [(True, False), (True, True)]
    assert results[1].sub_mchid == results[0].sub_mchid
    with Journal(path) as journal:
        assert journal.counts() == {"done": 1}
    assert sandbox.submerchant_count == 1


class _CountingReads(Journal):
    """A journal that counts the rows it is asked to read."""

    reads = 0

    def get(self, job_id: str) -> JobRecord | None:
        self.reads += 1
        return super().get(job_id)


async def test_jobs_on_a_new_journal_are_claimed_without_reading_first(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    path = tmp_path / "j.db"
    async with sandbox.client() as client:
        with _CountingReads(path) as journal:
            first = await collect(
                onboard_many(client, [application(i, mchid) for i in range(10)], journal=journal)
            )
            assert journal.reads == 0  # empty when the batch started: nothing to read
        with _CountingReads(path) as journal:
            second = await collect(
                onboard_many(client, [application(i, mchid) for i in range(15)], journal=journal)
            )
            assert journal.reads == 15  # not empty: every job reads its row first
    assert all(r.ok and not r.from_journal for r in first)
    assert sum(r.from_journal for r in second) == 10
    assert_exactly_once(sandbox, [r for r in second if not r.from_journal] + first, 15)


class _DoneMeanwhile(Journal):
    """Another run records the job as done while this run's re-send of it fails."""

    def failed(self, job_id: str, content_hash: str, code: str, message: str, **kw: Any) -> bool:
        if kw.get("keep_request"):
            self.done(job_id, "2000000042", "Under Review")
        return super().failed(job_id, content_hash, code, message, **kw)


async def test_a_failure_after_sending_never_overwrites_a_finished_job(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    sandbox.faults.set_rate("system_error", 1.0)
    path = tmp_path / "j.db"
    with _DoneMeanwhile(path) as journal:
        async with sandbox.client(retry=RetryPolicy(attempts=1)) as client:
            results = await collect(onboard_many(client, [application(0, mchid)], journal=journal))
    assert [(r.ok, r.sub_mchid, r.from_journal) for r in results] == [(True, "2000000042", True)]
    with Journal(path) as journal:
        (record,) = journal.records()
    assert (record.state, record.sub_mchid) == ("done", "2000000042")


class _DoneMeanwhileUnreadable(_DoneMeanwhile):
    """As above, and the finished row cannot be read back."""

    def get(self, job_id: str) -> JobRecord | None:
        raise sqlite3.OperationalError("database is locked")


async def test_a_finished_row_that_cannot_be_read_back_stops_the_batch(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Its result is neither lost nor reported as the failure the journal refused.
    mchid = sandbox.credentials.mchid
    sandbox.faults.set_rate("system_error", 1.0)
    with _DoneMeanwhileUnreadable(tmp_path / "j.db") as journal:
        async with sandbox.client(retry=RetryPolicy(attempts=1)) as client:
            agen = onboard_many(client, [application(0, mchid)], journal=journal)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await asyncio.wait_for(collect(agen), timeout=30)


async def test_job_ids_of_unnamed_rows_are_stable_content_hashes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A journal outlives the library version that wrote it: a row without a job id must get
    # the same id from every version, or a resumed batch would send it again as a new job.
    row = application(0, sandbox.credentials.mchid)
    row["name"] = "果欄 Fruit Store Limited"  # non-ASCII text is hashed as UTF-8, not escaped
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    async with sandbox.client() as client:
        results = await collect(
            onboard_many(
                client,
                [row, {"job_id": "named-7", "application": application(1, row["sp_mchid"])}],
                concurrency=1,
                journal=tmp_path / "j.db",
            )
        )
    assert sorted(r.job_id for r in results) == sorted([expected, "named-7"])
    assert all(r.ok for r in results)


async def test_job_ids_are_the_same_as_earlier_versions_gave(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Ids written down from the version before the content hash moved to a faster encoder:
    # a journal kept from then must still match its rows, models and odd values included.
    odd = application(3, "1900000109")
    odd["business_category"] = decimal.Decimal("343.0")  # hashed through default=str
    odd["registration_certificate_date"] = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    odd["name"] = "果欄 Fruit Store Limited"
    model = converter.structure(application(4, "1900000109"), SubMerchantApplication)
    async with sandbox.client() as client:
        results = await collect(
            onboard_many(client, [odd, model], concurrency=1, journal=tmp_path / "j.db")
        )
    assert [(r.job_id, r.error_code) for r in results] == [
        ("sha256:dab526edc6b59a3d40013f543379fc2e", "VALIDATION_ERROR"),
        ("sha256:d461e4bbc297a27d422a54cf0e39166f", None),
    ]


async def test_an_async_input_is_read_by_one_task(sandbox: Sandbox, tmp_path: Path) -> None:
    # Timeouts, context variables and locks inside an async source belong to the task that
    # reads it: one task must read it all, and a timeout inside it must stay its own.
    mchid = sandbox.credentials.mchid
    readers: set[asyncio.Task[Any] | None] = set()

    async def rows() -> Any:
        for i in range(12):
            async with asyncio.timeout(5):
                await asyncio.sleep(0.001)
            readers.add(asyncio.current_task())
            yield application(i, mchid)

    async with sandbox.client() as client:
        results = await collect(
            onboard_many(client, rows(), concurrency=4, journal=tmp_path / "j.db")
        )
    assert len(readers) == 1
    assert_exactly_once(sandbox, results, 12)


async def test_a_row_that_cannot_be_hashed_stops_the_reading(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    rows: list[Any] = [application(i, mchid) for i in range(40)]
    rows[10] = {1: "a", "b": 2}  # keys of two types: no canonical JSON, so no job id
    names: list[str] = []

    async def consume() -> None:
        async with sandbox.client() as client:
            async for _ in onboard_many(client, rows, concurrency=4, journal=tmp_path / "j.db"):
                await asyncio.sleep(0.02)  # a slow consumer: workers would run ahead

    with pytest.raises(TypeError):
        await consume()
    for request in sandbox.requests:
        if request.path == PATH:
            names.append(json.loads(request.body)["name"])
    assert names
    assert max(int(name.split()[2]) for name in names) < 10  # nothing after the bad row


async def test_an_ended_input_is_not_asked_again(sandbox: Sandbox, tmp_path: Path) -> None:
    # A terminal or a growing file can yield again after ending; one end is enough.
    mchid = sandbox.credentials.mchid

    class Rows:
        def __init__(self) -> None:
            self.left = [application(i, mchid) for i in range(3)]
            self.asked_after_end = 0

        def __iter__(self) -> Rows:
            return self

        def __next__(self) -> Any:
            if self.left:
                return self.left.pop()
            self.asked_after_end += 1
            raise StopIteration

    source = Rows()
    async with sandbox.client() as client:
        results = await collect(
            onboard_many(client, source, concurrency=4, journal=tmp_path / "j.db")
        )
    assert len(results) == 3
    assert source.asked_after_end == 1


async def test_concurrency_must_be_positive(sandbox: Sandbox, tmp_path: Path) -> None:
    async with sandbox.client() as client:
        with pytest.raises(ValueError, match="concurrency"):
            await collect(onboard_many(client, [], concurrency=0, journal=tmp_path / "j.db"))


async def test_input_that_is_not_iterable_fails_before_the_journal_opens(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    async with sandbox.client() as client:
        with pytest.raises(TypeError):
            await collect(onboard_many(client, 42, journal=tmp_path / "j.db"))  # type: ignore[arg-type]
    assert not (tmp_path / "j.db").exists()


async def test_a_slow_consumer_holds_back_the_workers(sandbox: Sandbox, tmp_path: Path) -> None:
    mchid = sandbox.credentials.mchid
    async with sandbox.client() as client:
        agen = onboard_many(
            client,
            (application(i, mchid) for i in range(100)),
            concurrency=2,
            journal=tmp_path / "j.db",
        )
        await agen.__anext__()
        await asyncio.sleep(0.3)  # the consumer stalls; workers must not run ahead
        sent = sum(1 for r in sandbox.requests if r.path == PATH)
        await agen.aclose()
    assert sent <= 2 * 2 + 2 + 1  # queued results + jobs in flight + the one consumed


async def test_a_failing_input_stops_the_batch_with_its_error(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid

    def rows() -> Any:
        for i in range(50):
            if i == 30:
                raise OSError("jobs file went away")
            yield application(i, mchid)

    seen: list[JobResult] = []

    async def consume() -> None:
        async with sandbox.client() as client:
            async for result in onboard_many(
                client, rows(), concurrency=4, journal=tmp_path / "j.db"
            ):
                seen.append(result)

    with pytest.raises(OSError, match="went away"):
        await consume()
    with Journal(tmp_path / "j.db") as journal:
        done = journal.counts().get("done", 0)
    assert len(seen) <= done <= 30  # everything yielded was journaled first; nothing past row 30


async def test_every_result_is_committed_before_it_is_yielded(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A second connection (another process, after a crash) finds each yielded result durable,
    # with the yielded sub_mchid. That a result is reported only once its row is committed (and
    # never when the commit fails) is pinned by the failing-done-row test below.
    mchid = sandbox.credentials.mchid
    path = tmp_path / "j.db"
    async with sandbox.client() as client:
        with Journal(path) as reader:
            async for result in onboard_many(
                client, (application(i, mchid) for i in range(200)), concurrency=64, journal=path
            ):
                record = reader.get(result.job_id)
                assert record is not None and record.state == "done"
                assert record.sub_mchid == result.sub_mchid
    assert sandbox.submerchant_count == 200


class _CommitFails(Journal):
    """A journal whose disk fills up: every commit fails."""

    def commit(self) -> None:
        raise sqlite3.OperationalError("database or disk is full")


async def test_nothing_is_sent_when_the_prepared_row_cannot_be_committed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    with _CommitFails(tmp_path / "j.db") as journal:
        async with sandbox.client() as client:
            with pytest.raises(sqlite3.OperationalError, match="disk is full"):
                await collect(
                    onboard_many(
                        client,
                        (application(i, mchid) for i in range(20)),
                        concurrency=8,
                        journal=journal,
                    )
                )
    assert not any(r.path == PATH for r in sandbox.requests)  # no key left unjournaled
    with Journal(tmp_path / "j.db") as journal:
        assert journal.counts() == {}  # rolled back, not half-written


class _DoneFails(Journal):
    """A journal that cannot record an outcome: every ``done`` row fails."""

    def done(self, job_id: str, sub_mchid: str, verification_status: str | None) -> None:
        raise sqlite3.OperationalError("database or disk is full")


async def test_a_result_whose_row_cannot_be_committed_is_never_yielded(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    path = tmp_path / "j.db"
    rows = [application(i, mchid) for i in range(20)]
    yielded: list[JobResult] = []

    async def consume(journal: Journal) -> None:
        async for result in onboard_many(client, rows, concurrency=8, journal=journal):
            yielded.append(result)

    with _DoneFails(path) as journal:
        async with sandbox.client() as client:
            with pytest.raises(sqlite3.OperationalError, match="disk is full"):
                await asyncio.wait_for(consume(journal), timeout=30)
    assert yielded == []
    with Journal(path) as journal:
        assert "done" not in journal.counts()
    # The resume re-sends every job that was sent under its stored key: none is created twice.
    async with sandbox.client() as client:
        results = await collect(onboard_many(client, rows, concurrency=8, journal=path))
    assert_exactly_once(sandbox, results, 20)


@pytest.mark.parametrize("shared", [True, False], ids=["one journal object", "two connections"])
async def test_two_batches_on_one_journal_file_run_side_by_side(
    sandbox: Sandbox, tmp_path: Path, shared: bool
) -> None:
    # Group commit must not leave a transaction open across an await: a second batch on the
    # same journal (object or file) would otherwise commit the first one's rows, or wait on
    # its write lock from the event loop thread until "database is locked".
    mchid = sandbox.credentials.mchid
    path = tmp_path / "j.db"
    first = Journal(path)
    second = first if shared else Journal(path)

    async def batch(journal: Journal, offset: int) -> list[JobResult]:
        rows = (application(offset + i, mchid) for i in range(60))
        return await collect(onboard_many(client, rows, concurrency=16, journal=journal))

    try:
        async with sandbox.client() as client:
            a, b = await asyncio.wait_for(
                asyncio.gather(batch(first, 0), batch(second, 1000)), timeout=30
            )
    finally:
        first.close()
        second.close()
    assert all(r.ok for r in a + b)
    with Journal(path) as journal:
        assert journal.counts() == {"done": 120}
    assert sandbox.submerchant_count == 120


async def test_two_runs_of_the_same_batch_on_one_journal_file_create_each_job_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # Someone starts the same batch twice. Both runs find the journal empty and claim jobs
    # without reading them first; the first write claims a job, and the second run must not
    # send it under a second key (that would onboard the merchant twice). The loser reads the
    # winner's row: still in flight, it reports DUPLICATE_JOB (retryable); finished, it
    # reports the stored result under the winner's key.
    mchid = sandbox.credentials.mchid
    path = tmp_path / "j.db"
    first, second = Journal(path), Journal(path)

    async def batch(journal: Journal) -> list[JobResult]:
        rows = (application(i, mchid) for i in range(80))
        return await collect(onboard_many(client, rows, concurrency=16, journal=journal))

    try:
        async with sandbox.client() as client:
            a, b = await asyncio.wait_for(asyncio.gather(batch(first), batch(second)), timeout=30)
    finally:
        first.close()
        second.close()
    assert sandbox.submerchant_count == 80
    assert all(sandbox.created_count(r.idempotency_key or "") <= 1 for r in a + b)
    for r in a + b:
        assert r.ok or r.error_code == "DUPLICATE_JOB", r
    keys_a = {r.job_id: r.idempotency_key for r in a if r.idempotency_key}
    keys_b = {r.job_id: r.idempotency_key for r in b if r.idempotency_key}
    assert all(keys_a[job] == keys_b[job] for job in keys_a.keys() & keys_b.keys())
    lost = [r for r in a + b if not r.ok]
    assert lost, "the runs never raced: this test would not catch a second key"
    assert all(r.retryable for r in lost)
    done = {r.job_id for r in a + b if r.ok}
    assert len(done) == 80  # every job finished in one run or the other
    with Journal(path) as journal:
        assert journal.counts() == {"done": 80}


class _SecondStatementFails(Journal):
    """``failed()`` writes its row, then the write callable fails: the row must not stand."""

    def failed(self, job_id: str, content_hash: str, code: str, message: str, **kw: Any) -> None:
        super().failed(job_id, content_hash, code, message, **kw)
        raise sqlite3.IntegrityError("constraint failed")


async def test_a_write_that_fails_is_undone_whole_and_the_others_stand(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    mchid = sandbox.credentials.mchid
    bad = application(0, mchid)
    bad["name"] = ""  # a validation failure: recorded through failed()
    with _SecondStatementFails(tmp_path / "j.db") as journal:
        async with sandbox.client() as client:
            with pytest.raises(sqlite3.IntegrityError):
                await collect(
                    onboard_many(
                        client,
                        [bad, *(application(i, mchid) for i in range(1, 10))],
                        concurrency=10,
                        journal=journal,
                    )
                )
    with Journal(tmp_path / "j.db") as journal:
        counts = journal.counts()
    assert "failed" not in counts  # the failure row written before the error was rolled back
    assert counts.get("done", 0) + counts.get("prepared", 0) <= 9
