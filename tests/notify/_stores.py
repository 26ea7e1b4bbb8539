"""Building each inbox store the same way, for tests that must hold for all of them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from wxpay_async.notify import Inbox, MemoryInbox, RedisInbox, SqliteInbox

STORES = ["memory", "sqlite", "redis"]


def make_inbox(kind: str, where: str | Path, **options: Any) -> Inbox:
    """``where`` is a directory (sqlite) or a redis URL; memory ignores it."""
    if kind == "memory":
        options.pop("lease", None)  # memory claims need no lease
        return MemoryInbox(**options)
    if kind == "sqlite":
        return SqliteInbox(Path(where) / "inbox.db", **options)
    if kind == "redis":
        options.setdefault("prefix", f"test:{uuid.uuid4().hex}:")
        return RedisInbox(str(where), **options)
    raise ValueError(kind)
