"""What the SQLite files (batch journal, notification inbox) share when they open."""

from __future__ import annotations

import sqlite3
import time

__all__ = ["use_wal"]


def use_wal(db: sqlite3.Connection, busy_seconds: float) -> None:
    """Switch the file to WAL, waiting out other connections as every statement does.

    Changing the journal mode needs the file to itself, and SQLite answers ``database is
    locked`` at once instead of calling the busy handler. Processes that open one new file at
    the same moment (two ``wxpay-async onboard --shard`` commands, web workers starting
    together on one inbox) hit exactly that, so the switch is retried for up to
    ``busy_seconds``; once the file is in WAL mode it stays so.
    """
    deadline = time.monotonic() + busy_seconds
    delay = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
