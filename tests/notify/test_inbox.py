"""The exactly-once contract, for every inbox store (memory, SQLite, Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sqlite_lock import another_writer
from wxpay_async import ValidationError
from wxpay_async.notify import (
    HandlerTimeoutError,
    Inbox,
    MemoryInbox,
    Notification,
    Outcome,
    RedisInbox,
    SqliteInbox,
)

from ._factory import note
from ._stores import STORES, make_inbox

MakeInbox = Callable[..., Inbox]


class Recorder:
    """A handler that counts its calls, optionally sleeping or failing."""

    def __init__(self, *, delay: float = 0.0, failures: int = 0) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.failures = failures
        self.started = asyncio.Event()

    async def __call__(self, notification: Notification) -> None:
        self.calls.append(notification.id)
        self.started.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler crashed")


def _builder(kind: str, where: Any) -> tuple[MakeInbox, list[Inbox]]:
    created: list[Inbox] = []
    prefix = f"test:{uuid.uuid4().hex}:"  # one namespace per test, shared by its inboxes

    def build(**options: Any) -> Inbox:
        if kind == "redis":
            options.setdefault("prefix", prefix)
        inbox = make_inbox(kind, where, **options)
        created.append(inbox)
        return inbox

    return build, created


async def _store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeInbox]:
    kind: str = request.param
    where: Any = request.getfixturevalue("redis_url") if kind == "redis" else tmp_path
    build, created = _builder(kind, where)
    yield build
    for inbox in created:
        await inbox.aclose()


@pytest.fixture(params=STORES)
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeInbox]:
    async for build in _store(request, tmp_path):
        yield build


@pytest.fixture(params=[s for s in STORES if s != "memory"])
async def make_shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeInbox]:
    """Stores whose separate inbox objects share state (a MemoryInbox is private)."""
    async for build in _store(request, tmp_path):
        yield build


async def test_runs_once_then_reports_duplicates(make: MakeInbox) -> None:
    inbox, handler = make(), Recorder()
    assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert handler.calls == ["EV-1"]


async def test_distinct_ids_run_independently(make: MakeInbox) -> None:
    inbox, handler = make(), Recorder()
    outcomes = [await inbox.process(note(f"EV-{i}"), handler) for i in range(3)]
    assert outcomes == [Outcome.PROCESSED] * 3
    assert handler.calls == ["EV-0", "EV-1", "EV-2"]


async def test_100_concurrent_deliveries_run_the_handler_once(make: MakeInbox) -> None:
    inbox, handler = make(wait=5.0), Recorder(delay=0.05)
    outcomes = await asyncio.gather(*(inbox.process(note(), handler) for _ in range(100)))
    assert handler.calls == ["EV-1"]
    assert outcomes.count(Outcome.PROCESSED) == 1
    assert outcomes.count(Outcome.DUPLICATE) == 99  # each waited for the first to finish


async def test_100_concurrent_deliveries_across_inbox_objects(make_shared: MakeInbox) -> None:
    inboxes, handler = [make_shared(wait=5.0) for _ in range(4)], Recorder(delay=0.05)
    outcomes = await asyncio.gather(*(inboxes[i % 4].process(note(), handler) for i in range(100)))
    assert handler.calls == ["EV-1"]
    assert outcomes.count(Outcome.PROCESSED) == 1


async def test_in_flight_duplicate_is_not_answered_as_done(make: MakeInbox) -> None:
    inbox, handler = make(wait=0), Recorder(delay=0.1)
    first = asyncio.create_task(inbox.process(note(), handler))
    await handler.started.wait()
    assert await inbox.process(note(), handler) is Outcome.IN_PROGRESS
    assert await first is Outcome.PROCESSED
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert handler.calls == ["EV-1"]


async def test_failed_handler_runs_again_on_next_delivery(make: MakeInbox) -> None:
    inbox, handler = make(), Recorder(failures=1)
    with pytest.raises(RuntimeError, match="handler crashed"):
        await inbox.process(note(), handler)
    assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert handler.calls == ["EV-1", "EV-1"]


async def test_waiting_duplicate_takes_over_when_the_first_fails(make: MakeInbox) -> None:
    inbox, handler = make(wait=5.0), Recorder(delay=0.03, failures=1)
    outcomes = await asyncio.gather(
        *(inbox.process(note(), handler) for _ in range(10)), return_exceptions=True
    )
    assert sum(isinstance(o, RuntimeError) for o in outcomes) == 1
    assert outcomes.count(Outcome.PROCESSED) == 1
    assert outcomes.count(Outcome.DUPLICATE) == 8
    assert handler.calls == ["EV-1", "EV-1"]


async def test_cancelled_delivery_releases_its_claim(make: MakeInbox) -> None:
    inbox, slow = make(wait=0), Recorder(delay=10)
    task = asyncio.create_task(inbox.process(note(), slow))
    await slow.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    handler = Recorder()
    assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert handler.calls == ["EV-1"]


async def test_cancelled_after_success_still_records_done(
    make: MakeInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The delivery is cancelled (the client hung up) while "done" is being written: the
    # write must finish anyway, or the next delivery would run the handler a second time.
    inbox, handler, gate, writing = make(wait=0), Recorder(), asyncio.Event(), asyncio.Event()
    complete = inbox._complete

    async def slow_complete(key: str, token: str) -> None:
        writing.set()
        await gate.wait()
        await complete(key, token)

    monkeypatch.setattr(inbox, "_complete", slow_complete)
    # A store whose done-write waits does not settle at once (a MemoryInbox subclass that
    # overrides ``_complete`` is marked so by itself; this instance is patched instead).
    monkeypatch.setattr(inbox, "_settles_at_once", False, raising=False)
    task = asyncio.create_task(inbox.process(note(), handler))
    await writing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    for _ in range(100):  # the write is finished in the background
        if await inbox.process(note(), handler) is Outcome.DUPLICATE:
            break
        await asyncio.sleep(0.01)
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert handler.calls == ["EV-1"]


async def test_heartbeat_keeps_a_long_handler_claimed(make: MakeInbox) -> None:
    # Leases long enough that a loaded CI machine still renews in time (a beat every 0.1 s).
    inbox = make(lease=0.3, wait=0)
    handler = Recorder(delay=1.0)  # more than three leases
    first = asyncio.create_task(inbox.process(note(), handler))
    await asyncio.wait_for(handler.started.wait(), 5)
    await asyncio.sleep(0.7)  # the first lease would have expired twice over without beats
    assert await asyncio.wait_for(inbox.process(note(), handler), 5) is Outcome.IN_PROGRESS
    assert await asyncio.wait_for(first, 5) is Outcome.PROCESSED
    assert handler.calls == ["EV-1"]


async def test_notification_id_must_be_a_non_empty_string(make: MakeInbox) -> None:
    with pytest.raises(ValidationError) as info:
        await make().process(note(""), Recorder())
    assert info.value.field == "notification.id"


@pytest.mark.parametrize(
    ("option", "value"),
    [("lease", 0), ("lease", -1), ("wait", -0.1), ("retention", 0), ("poll_interval", 0)],
)
def test_options_are_validated(tmp_path: Path, option: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        SqliteInbox(tmp_path / "x.db", **{option: value})
    assert info.value.field == option


async def test_memory_forgets_done_ids_after_retention() -> None:
    now = [0.0]
    inbox, handler = MemoryInbox(retention=60, clock=lambda: now[0]), Recorder()
    await inbox.process(note(), handler)
    now[0] = 59
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert len(inbox) == 1
    now[0] = 61
    assert len(inbox) == 0
    assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert handler.calls == ["EV-1", "EV-1"]


async def test_sqlite_prunes_done_ids_after_retention(tmp_path: Path) -> None:
    now = [1_000_000.0]
    handler = Recorder()
    async with SqliteInbox(tmp_path / "i.db", retention=60, clock=lambda: now[0]) as inbox:
        await inbox.process(note(), handler)
        now[0] += 59
        assert await inbox.process(note(), handler) is Outcome.DUPLICATE
        now[0] += 3600  # past retention and past the next pruning pass
        assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert handler.calls == ["EV-1", "EV-1"]


async def test_sqlite_remembers_across_reopen(tmp_path: Path) -> None:
    handler = Recorder()
    async with SqliteInbox(tmp_path / "i.db") as inbox:
        await inbox.process(note(), handler)
    async with SqliteInbox(tmp_path / "i.db") as inbox:
        assert await inbox.process(note(), handler) is Outcome.DUPLICATE
    assert handler.calls == ["EV-1"]


async def test_sqlite_claim_expires_after_its_lease(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path, gate, started = tmp_path / "i.db", asyncio.Event(), asyncio.Event()

    async def stuck(notification: Notification) -> None:
        started.set()
        await gate.wait()  # a holder that stops renewing (its heartbeat is 10 s away)

    holder = SqliteInbox(path, lease=30, wait=0, clock=lambda: now[0])
    other = SqliteInbox(path, lease=30, wait=0, clock=lambda: now[0])
    handler = Recorder()
    try:
        first = asyncio.create_task(holder.process(note(), stuck))
        await started.wait()
        now[0] += 29
        assert await other.process(note(), handler) is Outcome.IN_PROGRESS
        now[0] += 2  # the lease ran out: the holder is presumed dead
        assert await other.process(note(), handler) is Outcome.PROCESSED
        gate.set()
        await first
        assert await other.process(note(), handler) is Outcome.DUPLICATE
    finally:
        await holder.aclose()
        await other.aclose()
    assert handler.calls == ["EV-1"]


async def test_redis_done_markers_expire_after_retention(redis_url: str) -> None:
    handler = Recorder()
    async with make_inbox("redis", redis_url, retention=0.1) as inbox:
        await inbox.process(note(), handler)
        assert await inbox.process(note(), handler) is Outcome.DUPLICATE
        await asyncio.sleep(0.15)
        assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert handler.calls == ["EV-1", "EV-1"]


async def test_redis_accepts_a_client_it_does_not_own(redis_url: str) -> None:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        async with RedisInbox(client, prefix=f"test:{uuid.uuid4().hex}:") as inbox:
            assert await inbox.process(note(), Recorder()) is Outcome.PROCESSED
        assert await client.ping()  # still open: the inbox did not close it
    finally:
        await client.aclose()


class UnreleasableInbox(MemoryInbox):
    async def _release(self, key: str, token: str) -> None:
        raise ConnectionError("store went away")


async def test_a_failing_release_does_not_mask_the_handler_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(RuntimeError, match="handler crashed"):
        await UnreleasableInbox().process(note(), Recorder(failures=1))
    assert "could not release" in caplog.text


async def test_unreachable_redis_raises_without_running_the_handler() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    handler = Recorder()
    async with RedisInbox("redis://127.0.0.1:1/0") as inbox:  # nothing listens on port 1
        with pytest.raises(RedisConnectionError):
            await inbox.process(note(), handler)
    assert handler.calls == []


async def test_sqlite_inbox_opens_a_new_file_another_process_is_writing(tmp_path: Path) -> None:
    """Web workers starting together on one new inbox file: switching it to WAL needs the file
    to itself and SQLite refuses at once; the inbox waits (within busy_timeout) instead."""
    handler = Recorder()
    with another_writer(tmp_path / "i.db", release_after=0.2):
        async with SqliteInbox(tmp_path / "i.db") as inbox:
            assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert handler.calls == ["EV-1"]


async def test_memory_inbox_settles_without_a_task_and_a_cancel_cannot_skip_done() -> None:
    """The in-memory store settles without suspending: no task, and a cancellation requested
    while the handler finishes lands after "done" is recorded."""
    inbox, calls = MemoryInbox(wait=0), []

    async def handler(notification: Notification) -> None:
        calls.append(notification.id)
        current = asyncio.current_task()
        assert current is not None
        current.cancel()  # the client hangs up as the handler returns

    task = asyncio.create_task(inbox.process(note(), handler))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await inbox.process(note(), Recorder()) is Outcome.DUPLICATE
    assert calls == ["EV-1"]

    # Not one suspension from claim to done: the coroutine finishes on its first step.
    delivery = inbox.process(note("EV-2"), Recorder())
    with pytest.raises(StopIteration) as finished:
        delivery.send(None)
    assert finished.value.value is Outcome.PROCESSED


def test_memory_inbox_subclasses_that_wait_while_settling_are_shielded() -> None:
    class Slower(MemoryInbox):
        async def _complete(self, key: str, token: str) -> None:
            await asyncio.sleep(0)
            await super()._complete(key, token)

    class Beating(MemoryInbox):
        heartbeat = True

    class Renamed(MemoryInbox):
        pass

    assert MemoryInbox._settles_at_once and Renamed._settles_at_once
    assert not Slower._settles_at_once and not Beating._settles_at_once


class Hangs:
    """A handler that never returns on its first call (and notes that it was cancelled)."""

    def __init__(self) -> None:
        self.calls = 0
        self.cancelled = False

    async def __call__(self, notification: Notification) -> None:
        self.calls += 1
        if self.calls == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise


async def test_a_hung_handler_is_cancelled_after_handler_timeout_and_released(
    make: MakeInbox, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, handler = make(handler_timeout=0.05, wait=0), Hangs()
    with pytest.raises(HandlerTimeoutError) as info:
        await inbox.process(note("EV-H"), handler)
    assert handler.cancelled
    assert isinstance(info.value, TimeoutError)
    assert (info.value.notification_id, info.value.timeout) == ("EV-H", 0.05)
    assert "EV-H" in caplog.text and "cancelled" in caplog.text
    # Released, not held until the lease: the next delivery runs the handler at once.
    assert await inbox.process(note("EV-H"), handler) is Outcome.PROCESSED
    assert await inbox.process(note("EV-H"), handler) is Outcome.DUPLICATE
    assert handler.calls == 2


async def test_without_handler_timeout_a_slow_handler_holds_its_claim(make: MakeInbox) -> None:
    inbox, handler = make(wait=0), Recorder(delay=0.2)
    first = asyncio.create_task(inbox.process(note(), handler))
    await handler.started.wait()
    assert await inbox.process(note(), handler) is Outcome.IN_PROGRESS
    assert await first is Outcome.PROCESSED
    assert handler.calls == ["EV-1"]


async def test_a_handler_within_handler_timeout_completes(make: MakeInbox) -> None:
    inbox, handler = make(handler_timeout=5.0), Recorder(delay=0.01)
    assert await inbox.process(note(), handler) is Outcome.PROCESSED
    assert await inbox.process(note(), handler) is Outcome.DUPLICATE


async def test_the_handlers_own_timeout_error_is_not_taken_for_the_inbox_limit() -> None:
    async def times_out(notification: Notification) -> None:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)

    inbox = MemoryInbox(handler_timeout=5.0)
    with pytest.raises(TimeoutError) as info:
        await inbox.process(note(), times_out)
    assert not isinstance(info.value, HandlerTimeoutError)
    assert len(inbox) == 0  # released, not recorded done


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_handler_timeout_must_be_finite_positive_seconds(bad: Any, tmp_path: Path) -> None:
    for build in (
        lambda: MemoryInbox(handler_timeout=bad),
        lambda: SqliteInbox(tmp_path / "inbox.db", handler_timeout=bad),
    ):
        with pytest.raises(ValidationError) as info:
            build()
        assert info.value.field == "handler_timeout"
