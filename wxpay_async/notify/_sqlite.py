"""SqliteInbox: the default shared store, safe across processes on one machine.

Every store operation is one small autocommit statement (an UPSERT, an UPDATE or a DELETE), so
each is atomic under SQLite's own locking, across processes. Statements run on one private
worker thread per inbox: a writer in another process can hold the lock for a moment, and that
wait (``busy_timeout``) must happen off the event loop. The database uses WAL with
``synchronous=FULL``: a recorded "done" survives a crash. WAL needs a local file system (no
NFS/SMB); use :class:`RedisInbox` across machines.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._errors import ValidationError
from .._sqlite import use_wal
from ._checks import check_clock, seconds
from ._inbox import DEFAULT_RETENTION, Claim, Inbox

__all__ = ["SqliteInbox"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wxpay_notification_inbox (
    id TEXT PRIMARY KEY,
    token TEXT,          -- claim holder; NULL once done
    lease_until REAL,    -- Unix seconds after which the claim may be taken over
    done_at REAL         -- Unix seconds when the handler succeeded; NULL while not done
) WITHOUT ROWID
"""
# Take the claim when the ID is new, or not done and its lease ran out.
_CLAIM = """
INSERT INTO wxpay_notification_inbox (id, token, lease_until) VALUES (?1, ?2, ?3)
ON CONFLICT (id) DO UPDATE SET token = excluded.token, lease_until = excluded.lease_until
WHERE done_at IS NULL AND (token IS NULL OR lease_until <= ?4)
"""
_IS_DONE = "SELECT done_at IS NOT NULL FROM wxpay_notification_inbox WHERE id = ?"
_COMPLETE = """
INSERT INTO wxpay_notification_inbox (id, done_at) VALUES (?1, ?2)
ON CONFLICT (id) DO UPDATE SET done_at = excluded.done_at, token = NULL, lease_until = NULL
"""
# Done, by the holder whose unexpired claim this still is (one row changed), else not ours.
_COMPLETE_HELD = """
UPDATE wxpay_notification_inbox SET done_at = ?1, token = NULL, lease_until = NULL
WHERE id = ?2 AND token = ?3 AND done_at IS NULL AND lease_until > ?1
"""
_RELEASE = "DELETE FROM wxpay_notification_inbox WHERE id = ? AND token = ? AND done_at IS NULL"
_RENEW = """
UPDATE wxpay_notification_inbox SET lease_until = ?
WHERE id = ? AND token = ? AND done_at IS NULL
"""
_PRUNE = """
DELETE FROM wxpay_notification_inbox
WHERE (done_at IS NOT NULL AND done_at < ?1) OR (done_at IS NULL AND lease_until < ?1)
"""


class SqliteInbox(Inbox):
    """An inbox in a SQLite file shared by every process on this machine.

    ``path`` is created if missing. See :class:`Inbox` for ``lease``, ``wait``,
    ``retention`` and ``handler_timeout``, and for the limits of exactly-once (a lapsed
    lease); ``busy_timeout`` (finite seconds >= 0) bounds how long one statement waits for
    another process's write lock (on the worker thread, never on the event loop). ``clock``
    returns Unix seconds and must agree between processes (leases are stored as wall-clock
    times).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease: float = 30.0,
        wait: float = 2.0,
        retention: float = DEFAULT_RETENTION,
        poll_interval: float = 0.05,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        handler_timeout: float | None = None,
    ) -> None:
        super().__init__(
            lease=lease,
            wait=wait,
            retention=retention,
            poll_interval=poll_interval,
            handler_timeout=handler_timeout,
        )
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ValidationError("path", "must be a file path")
        self.path = os.fspath(path)
        self.busy_timeout = seconds("busy_timeout", busy_timeout, zero_ok=True)
        self._clock = check_clock(clock)
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._next_prune = 0.0

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        use_wal(conn, self.busy_timeout)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(_SCHEMA)
        return conn

    def _db(self) -> sqlite3.Connection:
        # Only ever called on the worker thread.
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="wxpay-sqlite-inbox")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._db()))

    # -- store operations -----------------------------------------------------------------

    async def _claim(self, key: str, token: str) -> Claim:
        now = self._clock()
        return await self._run(functools.partial(self._claim_sync, key, token, now))

    def _claim_sync(self, key: str, token: str, now: float, conn: sqlite3.Connection) -> Claim:
        if now >= self._next_prune:
            conn.execute(_PRUNE, (now - self.retention,))
            self._next_prune = now + min(3600.0, self.retention / 10)
        for _ in range(3):
            if conn.execute(_CLAIM, (key, token, now + self.lease, now)).rowcount == 1:
                return Claim.CLAIMED
            row = conn.execute(_IS_DONE, (key,)).fetchone()
            if row is not None:
                return Claim.DONE if row[0] else Claim.HELD
            # released between the two statements: the ID is free again, claim once more
        return Claim.HELD

    async def _complete(self, key: str, token: str) -> bool:
        now = self._clock()
        return await self._run(functools.partial(self._complete_sync, key, token, now))

    @staticmethod
    def _complete_sync(key: str, token: str, now: float, conn: sqlite3.Connection) -> bool:
        if conn.execute(_COMPLETE_HELD, (now, key, token)).rowcount == 1:
            return True
        # The claim lapsed (taken over, released by its new holder, or just expired): the
        # handler did succeed here, so record "done" anyway, and say the claim was lost.
        conn.execute(_COMPLETE, (key, now))
        return False

    async def _release(self, key: str, token: str) -> None:
        await self._run(lambda conn: conn.execute(_RELEASE, (key, token)))

    async def _renew(self, key: str, token: str) -> bool:
        until = self._clock() + self.lease
        cursor = await self._run(lambda conn: conn.execute(_RENEW, (until, key, token)))
        return cursor.rowcount == 1

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_sync)
        executor.shutdown(wait=False)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __repr__(self) -> str:
        return f"SqliteInbox({self.path!r}, lease={self.lease})"
