"""Another connection writing to a SQLite file, as a second process would."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def another_writer(path: Path, *, release_after: float | None = None) -> Iterator[None]:
    """Hold a write transaction on ``path`` (a new file: still in rollback-journal mode) until
    ``release_after`` seconds have passed, or until the block ends when it is ``None``."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE someone_elses (x)")
    timer = None
    if release_after is not None:
        timer = threading.Timer(release_after, lambda: other.execute("COMMIT"))
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.join()
        other.close()
