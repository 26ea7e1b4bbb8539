"""The onboarding journal: one SQLite row per job, written before the request and after it.

The row written *before* sending holds the job's Idempotency-Key and the exact request bytes.
After a crash (even SIGKILL between sending and recording), a resumed run finds the row still
``prepared`` and re-sends those same bytes under that same key, which WeChat answers with the
sub-merchant it already created instead of creating a second one.

WAL mode with ``synchronous=NORMAL`` survives a killed process (every committed row is in the
WAL); use ``synchronous="FULL"`` to also survive power loss, at the cost of an fsync per commit.
Writes are single-row and short, so they run on the event loop thread. ``onboard_many`` groups
the writes its jobs make in one event-loop turn into one transaction (:class:`GroupCommit`):
each job still waits for its own row to be committed before it sends or reports, but the
batch pays one commit per turn instead of one per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from .._errors import ValidationError
from .._sqlite import use_wal

__all__ = ["GroupCommit", "JobRecord", "JobState", "Journal", "Settled"]

log = logging.getLogger("wxpay_async")

T = TypeVar("T")

_COLUMNS = (
    "job_id, state, content_hash, idempotency_key, body, wechatpay_serial, sub_mchid,"
    " verification_status, error_code, error_message, retryable, runs, updated_at"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id              TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    content_hash        TEXT,
    idempotency_key     TEXT,
    body                BLOB,
    wechatpay_serial    TEXT,
    sub_mchid           TEXT,
    verification_status TEXT,
    error_code          TEXT,
    error_message       TEXT,
    retryable           INTEGER NOT NULL DEFAULT 0,
    runs                INTEGER NOT NULL DEFAULT 0,
    updated_at          REAL NOT NULL
)
"""


class JobState(enum.StrEnum):
    PREPARED = "prepared"  # key and body recorded; the request may or may not have reached WeChat
    DONE = "done"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class JobRecord:
    job_id: str
    state: JobState
    content_hash: str | None
    idempotency_key: str | None
    body: bytes | None
    wechatpay_serial: str | None
    sub_mchid: str | None
    verification_status: str | None
    error_code: str | None
    error_message: str | None
    retryable: bool
    runs: int
    #: ``time.time()`` of the row's last write.
    updated_at: float


#: How long a statement waits for another process's lock on the journal file.
_BUSY_SECONDS = 5.0


class Journal:
    """A durable record of every job's key, body and outcome (see the module docstring)."""

    def __init__(
        self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            # Interpolated into a PRAGMA: a typo would silently mean NORMAL, and OFF would
            # drop the "durable before the request leaves" guarantee.
            raise ValidationError("synchronous", "must be 'NORMAL' or 'FULL'")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=_BUSY_SECONDS
            )
        except sqlite3.Error as exc:  # a missing directory, say
            raise ValidationError("journal", f"cannot open {self.path}: {exc}") from None
        try:
            use_wal(self._db, _BUSY_SECONDS)
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        except sqlite3.OperationalError:  # locked by another process, say: as it is
            self._db.close()
            raise
        except sqlite3.DatabaseError as exc:  # "file is not a database"
            self._db.close()
            raise ValidationError("journal", f"{self.path} is not a journal: {exc}") from None
        if not set(_COLUMNS.split(", ")) <= columns:  # another application's jobs table
            self._db.close()
            raise ValidationError(
                "journal", f"{self.path} has a jobs table that is not a wxpay_async journal's"
            )
        self._group: GroupCommit | None = None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def begin(self) -> None:
        """Open a transaction: the writes that follow become durable together at :meth:`commit`."""
        self._db.execute("BEGIN IMMEDIATE")

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Make the statements inside atomic within the open transaction."""
        self._db.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO write")
            self._db.execute("RELEASE write")
            raise
        self._db.execute("RELEASE write")

    def group_commit(self) -> GroupCommit:
        """This journal's one :class:`GroupCommit` (shared by every batch writing to it)."""
        if self._group is None:
            self._group = GroupCommit(self)
        return self._group

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def is_empty(self) -> bool:
        """Whether the journal holds no job at all."""
        return self._db.execute("SELECT 1 FROM jobs LIMIT 1").fetchone() is None

    def get(self, job_id: str) -> JobRecord | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?",  # noqa: S608 - constant columns
            (job_id,),
        ).fetchone()
        return None if row is None else _record(row)

    def prepared(
        self,
        job_id: str,
        content_hash: str,
        idempotency_key: str,
        body: bytes,
        serial: str,
        *,
        expected_runs: int | None = None,
    ) -> bool:
        """Record the key and exact bytes; committed before the request is sent.

        With ``expected_runs`` this is a claim: the row is written only if the job still has
        that many runs (``0``: no row yet), so of two runs racing on one journal file exactly
        one gets to send the job under a new key. Returns whether the row was written.
        """
        cursor = self._db.execute(
            "INSERT INTO jobs (job_id, state, content_hash, idempotency_key, body,"
            " wechatpay_serial, runs, updated_at) VALUES (?, 'prepared', ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(job_id) DO UPDATE SET state='prepared',"
            " content_hash=excluded.content_hash, idempotency_key=excluded.idempotency_key,"
            " body=excluded.body, wechatpay_serial=excluded.wechatpay_serial, runs=runs+1,"
            " updated_at=excluded.updated_at WHERE ? IS NULL OR runs = ?",
            (
                job_id,
                content_hash,
                idempotency_key,
                body,
                serial,
                time.time(),
                expected_runs,
                expected_runs,
            ),
        )
        return cursor.rowcount == 1

    def resending(self, job_id: str, *, expected_runs: int | None = None) -> bool:
        """Count another run of a job whose prepared request is re-sent as is.

        With ``expected_runs`` this is a claim, as for :meth:`prepared`: written only if no
        other run has claimed the job since it was read. Returns whether the row was written.
        """
        cursor = self._db.execute(
            "UPDATE jobs SET state='prepared', runs=runs+1, updated_at=?"
            " WHERE job_id=? AND (? IS NULL OR runs = ?)",
            (time.time(), job_id, expected_runs, expected_runs),
        )
        return cursor.rowcount == 1

    def done(self, job_id: str, sub_mchid: str, verification_status: str | None) -> None:
        self._db.execute(
            "UPDATE jobs SET state='done', sub_mchid=?, verification_status=?, error_code=NULL,"
            " error_message=NULL, retryable=0, updated_at=? WHERE job_id=?",
            (sub_mchid, verification_status, time.time(), job_id),
        )

    def failed(
        self,
        job_id: str,
        content_hash: str,
        code: str,
        message: str,
        *,
        retryable: bool,
        keep_request: bool,
        expected_runs: int | None = None,
    ) -> bool:
        """Record a failure; a row that never got a prepared request is created here.

        ``keep_request=False`` forgets the stored key and body (nothing was sent under them).
        With ``expected_runs`` (a failure before sending) the row is written only if no other
        run has claimed the job since it was read, so a failure here never erases the key and
        bytes another run is sending. A job already ``done`` is never marked failed (another
        run finished it under the same key). One statement: atomic on its own. Returns whether
        the row was written.
        """
        cursor = self._db.execute(
            "INSERT INTO jobs (job_id, state, content_hash, error_code, error_message, retryable,"
            " runs, updated_at) VALUES (?, 'failed', ?, ?, ?, ?, 1, ?)"
            " ON CONFLICT(job_id) DO UPDATE SET state='failed', error_code=excluded.error_code,"
            " content_hash=excluded.content_hash, error_message=excluded.error_message,"
            " retryable=excluded.retryable, updated_at=excluded.updated_at,"
            " body=CASE WHEN ? THEN body END,"
            " idempotency_key=CASE WHEN ? THEN idempotency_key END,"
            " wechatpay_serial=CASE WHEN ? THEN wechatpay_serial END"
            " WHERE (? IS NULL OR runs = ?) AND state <> 'done'",
            (
                job_id,
                content_hash,
                code,
                message,
                int(retryable),
                time.time(),
                keep_request,
                keep_request,
                keep_request,
                expected_runs,
                expected_runs,
            ),
        )
        return cursor.rowcount == 1

    def counts(self) -> dict[str, int]:
        """Jobs per state."""
        return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def records(self) -> list[JobRecord]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM jobs ORDER BY job_id"  # noqa: S608 - constant columns
        ).fetchall()
        return [_record(row) for row in rows]


#: Called once a posted write is committed (``None`` and its value) or has failed (the error).
Settled = Callable[[BaseException | None, Any], None]
#: A queued write: the statement, its arguments, and the future its writer awaits or the
#: callback it posted.
_Write = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any] | Settled]
#: A write's fate once its turn is over: its future or callback, its error, its value.
_Outcome = tuple[asyncio.Future[Any] | Settled, BaseException | None, Any]


class GroupCommit:
    """Group commit for a :class:`Journal` written by many coroutines on one event loop.

    ``await group.write(journal.prepared, ...)`` queues the write and returns once it is
    committed. The writes queued during one event-loop turn run together at the start of the
    next one, synchronously, in one transaction. If any of them fails, that transaction is
    rolled back and the turn runs again with each write inside its own savepoint, so a write
    that fails is undone whole (everything its callable did) and raised to its own writer
    while the others stand; the common case pays no savepoints. A failed commit is rolled back
    and raised to every writer of that turn, so none of them goes on as if its row were
    durable.

    No transaction stays open across an ``await``: a second connection to the same file (a
    reader, another journal object) never waits on one, and reads see committed rows only.
    Use :meth:`Journal.group_commit` to share one per journal.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._queue: list[_Write] = []

    async def write(self, statement: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Queue ``statement(*args, **kwargs)``; its return value once it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        if not self._queue:
            loop.call_soon(self.flush)
        self._queue.append((statement, args, kwargs, done))
        # A writer cancelled while waiting still gets its row written and committed (the
        # queue holds the statement, not the future; a ``prepared`` row without a request is
        # re-sent with the same key on resume). Cancelling only cancels this future.
        return await done

    def post(self, statement: Callable[..., Any], *args: Any, then: Settled, **kwargs: Any) -> None:
        """Queue ``statement(*args, **kwargs)`` without waiting; ``then(error, value)`` is
        called once, after the commit (``None`` and the statement's value) or with the error.

        For a writer with nothing to do between the write and its commit but report it (a
        batch job's last row): it is free for its next job at once, in this event-loop turn.
        An exception raised by ``then`` goes to the event loop's exception handler; the other
        writers of the turn are settled all the same.
        """
        if not self._queue:
            asyncio.get_running_loop().call_soon(self.flush)
        self._queue.append((statement, args, kwargs, then))

    def flush(self) -> None:
        """Run and commit every queued write now (also called before closing the journal)."""
        batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            outcomes = self._run_together(batch)
            if outcomes is None:
                # Rare: a write failed. Start over with each write in its own savepoint, so
                # that it is undone whole and raised to its writer alone.
                outcomes = self._run_isolated(batch)
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.journal.rollback()
            log.warning("journal commit failed (%s); %d write(s) not recorded", exc, len(batch))
            for *_, done in batch:
                _settle(done, exc)
            if not isinstance(exc, Exception):
                raise
            return
        # Settled only once the transaction is committed (or has failed as a whole, above):
        # each writer hears about its write exactly once.
        for done, error, result in outcomes:
            _settle(done, error, result)

    def _run_together(self, batch: list[_Write]) -> list[_Outcome] | None:
        """Every write of ``batch`` in one transaction, committed; ``None`` if one failed."""
        journal = self.journal
        outcomes: list[_Outcome] = []
        journal.begin()
        for statement, args, kwargs, done in batch:
            try:
                outcomes.append((done, None, statement(*args, **kwargs)))
            except Exception:  # SQLite's, or a value it cannot bind: this write's alone
                journal.rollback()
                return None
        journal.commit()
        return outcomes

    def _run_isolated(self, batch: list[_Write]) -> list[_Outcome]:
        """Each write in its own savepoint; a failing one is undone and its error kept for its
        writer alone."""
        journal = self.journal
        outcomes: list[_Outcome] = []
        journal.begin()
        for statement, args, kwargs, done in batch:
            try:
                with journal.savepoint():
                    outcomes.append((done, None, statement(*args, **kwargs)))
            except Exception as exc:  # not only sqlite3.Error: a value that cannot be bound
                outcomes.append((done, exc, None))
        journal.commit()
        return outcomes


def _settle(
    done: asyncio.Future[Any] | Settled, exc: BaseException | None, result: Any = None
) -> None:
    if not isinstance(done, asyncio.Future):
        try:
            done(exc, result)
        except Exception as error:  # a bug in a callback must not strand the turn's others
            context = {"message": "a journal write's callback failed", "exception": error}
            try:
                asyncio.get_running_loop().call_exception_handler(context)
            except RuntimeError:  # flushed outside the event loop
                log.error("%s: %r", context["message"], error)
        return
    if done.done():
        return
    if exc is None:
        done.set_result(result)
    else:
        done.set_exception(exc)
        done.exception()  # retrieved: a writer that was cancelled meanwhile is no error


def _record(row: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        job_id=row[0],
        state=JobState(row[1]),
        content_hash=row[2],
        idempotency_key=row[3],
        body=row[4],
        wechatpay_serial=row[5],
        sub_mchid=row[6],
        verification_status=row[7],
        error_code=row[8],
        error_message=row[9],
        retryable=bool(row[10]),
        runs=row[11],
        updated_at=row[12],
    )
