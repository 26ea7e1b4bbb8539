"""A separate process sharing an inbox with the test (``python -m tests.notify._worker``).

``race``: wait for the go file, then deliver notifications ``EV-0``..``EV-<n-1>`` concurrently
(``--reverse``: last to first, so two workers meet in the middle and contend there);
every handler run appends ``<pid> <id>`` to the output file; prints the outcome counts as JSON.
``hang``: claim ``EV-crash`` with a handler that never returns (the test kills this process).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import time
from pathlib import Path

from wxpay_async.notify import Notification

from ._stores import make_inbox


def note(notification_id: str) -> Notification:
    return Notification(
        id=notification_id,
        create_time=dt.datetime(2024, 5, 20, tzinfo=dt.UTC),
        event_type="PAYSCORE.USER_OPEN_SERVICE",
        resource_type="encrypt-resource",
    )


def record(out: Path, notification_id: str) -> None:
    # O_APPEND writes of one short line are atomic between processes.
    with out.open("a") as stream:
        stream.write(f"{os.getpid()} {notification_id}\n")


def signal_ready(ready: Path) -> None:
    ready.touch()


def start_barrier(go: Path) -> None:
    # Block on purpose: both workers leave the barrier within a few milliseconds.
    while not go.exists():
        time.sleep(0.002)


async def main(args: argparse.Namespace) -> None:
    out, ready, go = Path(args.out), Path(args.ready), Path(args.go)
    options = {"lease": args.lease, "wait": 5.0}
    if args.store == "redis":
        options["prefix"] = args.prefix
    async with make_inbox(args.store, args.where, **options) as inbox:

        async def noop(_n: Notification) -> None:
            return None

        await inbox.process(note(f"warmup-{os.getpid()}"), noop)  # connect before the race
        signal_ready(ready)
        if args.mode == "hang":

            async def hang(n: Notification) -> None:
                record(out, n.id)
                await asyncio.sleep(3600)

            await inbox.process(note("EV-crash"), hang)
            return
        start_barrier(go)

        async def handler(n: Notification) -> None:
            record(out, n.id)
            await asyncio.sleep(0.01)

        order = range(args.count - 1, -1, -1) if args.reverse else range(args.count)
        outcomes = await asyncio.gather(*(inbox.process(note(f"EV-{i}"), handler) for i in order))
    print(json.dumps(collections.Counter(o.value for o in outcomes)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["race", "hang"])
    parser.add_argument("store", choices=["sqlite", "redis"])
    parser.add_argument("where")
    parser.add_argument("out")
    parser.add_argument("ready")
    parser.add_argument("go")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--prefix", default="test:")
    parser.add_argument("--reverse", action="store_true", help="deliver the IDs last to first")
    asyncio.run(main(parser.parse_args()))
