"""The exactly-once inbox: run a handler once per notification ID, whatever the deliveries do.

WeChat Pay delivers a notification until it gets a 2xx, possibly several times at once and to
several servers. An inbox turns that into "the handler succeeded exactly once":

1. **claim** the ID (atomic in the store); a claim carries a random token and a *lease*;
2. run the handler while a heartbeat renews the lease (stores shared between processes);
3. on success, record the ID as **done** (kept for ``retention``) and drop the claim, even if
   the delivery is cancelled meanwhile; on failure or cancellation of the handler, **release**
   the claim (compare-and-delete on the token), so the next delivery runs the handler again.

A claim left by a crashed process stops blocking once its lease runs out. A delivery that
finds the ID claimed waits up to ``wait`` seconds for the holder to finish (then it is a
duplicate, or, if the holder failed, it claims and runs the handler itself); after that it
reports :attr:`Outcome.IN_PROGRESS`, which the HTTP layer answers with a retryable 503 — never
a 2xx before the first delivery has succeeded.

Limits — exactly-once holds only while both of these hold:

* **The store stays reachable.** If recording "done" fails after the handler succeeded, the
  error propagates and a later delivery runs the handler again. If the heartbeat cannot renew
  the lease for longer than the lease, the claim lapses (next point).
* **The handler does not block the event loop for longer than the lease** (a synchronous
  database driver, CPU work, ``time.sleep``). The heartbeat runs on the same loop; a live
  holder whose lease lapses looks exactly like a crashed one, so another delivery takes the
  claim and runs the handler too, and both record "done". The inbox cannot prevent that, only
  report it: completing with a claim that was lost logs an ERROR on ``wxpay_async.notify``
  naming the notification ID. Choose ``lease`` well above the longest stall, and run blocking
  work in a thread (``asyncio.to_thread``).

A handler that never returns (an ``await`` on a dead connection without a timeout, say)
would hold its claim for as long as the process lives, and every redelivery would be answered
``IN_PROGRESS`` until WeChat Pay gives up. ``handler_timeout`` bounds it: the handler is
cancelled after that many seconds, its claim released, and :class:`HandlerTimeoutError` raised
(the HTTP layer answers 500, so WeChat's next retry runs the handler again). It is off by
default, since cutting a legitimately long handler would make every retry fail the same way.

Handlers are coroutine functions (see :func:`check_handler`); a plain function is refused
before anything runs, since its side effect would already have happened by the time its
``None`` failed to be awaited.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import inspect
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar

from .._errors import ValidationError, WxPayError
from ._checks import check_clock, check_handler, seconds

__all__ = [
    "Claim",
    "HandlerNotAwaitableError",
    "HandlerTimeoutError",
    "Identified",
    "Inbox",
    "MemoryInbox",
    "Outcome",
]

log = logging.getLogger("wxpay_async.notify")

#: Longest pause between two looks at a claimed ID while waiting for its holder.
_MAX_POLL = 0.5
DEFAULT_RETENTION = 7 * 24 * 3600.0  # WeChat retries for up to 3 days (PayScore); keep more


class Outcome(enum.StrEnum):
    """What :meth:`Inbox.process` did."""

    PROCESSED = "processed"  # the handler ran now and succeeded
    DUPLICATE = "duplicate"  # the handler had already succeeded for this ID
    IN_PROGRESS = "in_progress"  # another delivery still holds the claim: answer a 5xx


class Claim(enum.Enum):
    """A store's answer to "may I run this ID?"."""

    CLAIMED = "claimed"
    DONE = "done"
    HELD = "held"


class Identified(Protocol):
    """Anything with a string ``id`` (a :class:`Notification`)."""

    @property
    def id(self) -> str: ...


N = TypeVar("N", bound=Identified)


class HandlerNotAwaitableError(ValidationError):
    """The handler returned something that is not awaitable; its ID was recorded as done.

    Only a handler that passed :func:`check_handler` yet behaves synchronously gets here (an
    object claiming ``async`` that is not). Its side effect has run, so releasing the claim
    would let every redelivery run it again: the ID is recorded as done instead, an ERROR is
    logged, and this (a :class:`ValidationError` on ``handler``) is raised to the caller.
    """

    #: Set by the inbox that recorded the ID as done. An enclosing inbox (a handler that
    #: itself calls ``process``) then sees an ordinary handler failure, not its own.
    recorded: bool = False


class HandlerTimeoutError(WxPayError, TimeoutError):
    """The handler ran longer than the inbox's ``handler_timeout``; it was cancelled.

    Its claim was released, so the next delivery of ``notification_id`` runs the handler
    again. Only raised for the inbox's own limit: a ``TimeoutError`` raised by the handler
    itself propagates unchanged.
    """

    def __init__(self, notification_id: str, timeout: float) -> None:
        self.notification_id = notification_id
        self.timeout = timeout
        super().__init__(
            f"notification {notification_id}: handler cancelled after {timeout:g} s"
            " (handler_timeout); its claim was released for redelivery"
        )


def awaitable(result: object) -> Awaitable[Any]:
    """What a handler call returned, if it can be awaited; else :class:`HandlerNotAwaitableError`.

    A plain function, not a coroutine: no extra frame per delivery on the hot path.
    """
    if not inspect.isawaitable(result):
        raise HandlerNotAwaitableError(
            "handler", f"returned {type(result).__name__}, not an awaitable (use async def)"
        )
    return result


async def _stop(beat: asyncio.Task[None] | None) -> None:
    # Wait for the heartbeat to really end, so no renewal races the final store write.
    if beat is not None:
        beat.cancel()
        await asyncio.wait([beat])


class Inbox(abc.ABC):
    """Base of the inbox stores; subclasses provide the atomic store operations.

    ``lease``: how long a claim survives without a heartbeat (a crashed process's claim is
    free again after this). ``wait``: how long a duplicate delivery waits for an in-flight one
    before reporting ``IN_PROGRESS`` (``0`` answers at once). ``retention``: how long a done ID
    is remembered. ``handler_timeout``: ``None`` (the default) lets a handler run as long as it
    takes; a number of seconds cancels it after that long, releases its claim and raises
    :class:`HandlerTimeoutError`. All are finite numbers of seconds (``ValidationError``
    otherwise).

    Exactly-once needs the handler not to block the event loop longer than ``lease`` and the
    store to stay reachable: a holder whose lease lapses loses its claim to the next delivery,
    and both run the handler (the lapse is logged at ERROR with the notification ID when the
    first one completes). See the module docstring.
    """

    #: Whether claims must be renewed while the handler runs (stores shared across processes).
    heartbeat: ClassVar[bool] = True
    #: True only where settling never suspends (no heartbeat to stop, ``_complete`` and
    #: ``_release`` without an ``await`` that waits): ``MemoryInbox``, not its subclasses that
    #: override any of these.
    _settles_at_once: ClassVar[bool] = False

    def __init__(
        self,
        *,
        lease: float = 30.0,
        wait: float = 2.0,
        retention: float = DEFAULT_RETENTION,
        poll_interval: float = 0.05,
        handler_timeout: float | None = None,
    ) -> None:
        self.lease = seconds("lease", lease)
        self.wait = seconds("wait", wait, zero_ok=True)
        self.retention = seconds("retention", retention)
        self.poll_interval = seconds("poll_interval", poll_interval)
        self.handler_timeout = (
            None if handler_timeout is None else seconds("handler_timeout", handler_timeout)
        )

    async def process(self, notification: N, handler: Callable[[N], Awaitable[Any]]) -> Outcome:
        """Run ``await handler(notification)`` unless its ID already succeeded or is in flight.

        Returns :attr:`Outcome.PROCESSED` after the handler succeeded,
        :attr:`Outcome.DUPLICATE` if it had succeeded before, :attr:`Outcome.IN_PROGRESS` if
        another delivery still holds the claim after ``wait`` seconds. An exception from the
        handler releases the claim and propagates; so does :class:`HandlerTimeoutError` when
        the handler outlives ``handler_timeout``.

        ``handler`` must be an async callable (:func:`check_handler`: ``async def``
        functions, bound async methods, partials of them, objects with ``async def
        __call__``); anything else raises ``ValidationError("handler")`` before the claim.
        """
        check_handler(handler)
        key = notification.id
        if not isinstance(key, str) or not key:
            raise ValidationError("notification.id", "must be a non-empty string")
        token = secrets.token_hex(16)
        try:
            state = await self._acquire(key, token)
        except BaseException:
            # Cancelled mid-claim: the store may have taken the claim anyway (a statement
            # already on its way); give it back (compare-and-delete: harmless if not ours).
            await self._give_back(key, token)
            raise
        if state is Claim.DONE:
            return Outcome.DUPLICATE
        if state is Claim.HELD:
            return Outcome.IN_PROGRESS
        beat = asyncio.create_task(self._beat(key, token)) if self.heartbeat else None
        try:
            if self.handler_timeout is None:
                await awaitable(handler(notification))
            else:
                await self._run_limited(key, handler, notification, self.handler_timeout)
        except BaseException as exc:
            if isinstance(exc, HandlerNotAwaitableError) and not exc.recorded:
                # The handler ran synchronously to its end: releasing would repeat its side
                # effect on every redelivery. Record it as done and make the mistake loud.
                exc.recorded = True
                await self._settle_surely(key, token, beat, succeeded=True)
                log.error(
                    "notification %s: the handler is not async (it returned a non-awaitable);"
                    " recorded as done so it does not run again; fix the handler",
                    key,
                )
            else:
                await self._settle_surely(key, token, beat, succeeded=False)
            raise
        # Once the handler has succeeded, a cancelled delivery (the client hung up) must still
        # record "done", or the next delivery would run the handler a second time.
        await self._settle_surely(key, token, beat, succeeded=True)
        return Outcome.PROCESSED

    @staticmethod
    async def _run_limited(
        key: str, handler: Callable[[N], Awaitable[Any]], notification: N, limit: float
    ) -> None:
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                await awaitable(handler(notification))
        except TimeoutError:
            if timer.expired():  # ours, not a TimeoutError the handler raised itself
                log.warning("notification %s: handler cancelled after %g s", key, limit)
                raise HandlerTimeoutError(key, limit) from None
            raise

    async def _settle_surely(
        self, key: str, token: str, beat: asyncio.Task[None] | None, *, succeeded: bool
    ) -> None:
        """Settle the claim even if this delivery is cancelled meanwhile.

        Shielded (the settlement runs in a task of its own that a cancellation cannot reach)
        unless the store settles at once: then nothing in it suspends, so no cancellation
        can land inside, and the task and its two event-loop turns are saved.
        """
        if self._settles_at_once:
            await self._settle(key, token, beat, succeeded=succeeded)
        else:
            await asyncio.shield(self._settle(key, token, beat, succeeded=succeeded))

    async def _settle(
        self, key: str, token: str, beat: asyncio.Task[None] | None, *, succeeded: bool
    ) -> None:
        await _stop(beat)
        if succeeded:
            if await self._complete(key, token) is False:
                log.error(
                    "notification %s: the claim lapsed before the handler finished (lease "
                    "%.3g s; event loop blocked or store unreachable); another delivery may "
                    "have run the handler too",
                    key,
                    self.lease,
                )
        else:
            await self._give_back(key, token)

    async def _acquire(self, key: str, token: str) -> Claim:
        """CLAIMED or DONE as soon as seen; HELD if still held after ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        pause = self.poll_interval
        while True:
            state = await self._claim(key, token)
            if state is not Claim.HELD:
                return state
            remaining = deadline - loop.time()
            if remaining <= 0:
                return state
            await self._wait_change(key, min(remaining, pause))
            pause = min(pause * 2, _MAX_POLL)

    async def _give_back(self, key: str, token: str) -> None:
        # Shielded: a cancelled delivery must still release. A store failure here must not
        # mask the error being raised; the lease frees the claim later anyway.
        try:
            await asyncio.shield(self._release(key, token))
        except Exception as exc:
            log.warning("notification %s: could not release claim (%s)", key, exc)

    async def _beat(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self._renew(key, token):
                    log.warning("notification %s: claim lost before the handler finished", key)
                    return
            except Exception as exc:  # a store hiccup: try again next beat
                log.warning("notification %s: could not renew claim (%s)", key, exc)

    # -- the store operations ------------------------------------------------------------

    @abc.abstractmethod
    async def _claim(self, key: str, token: str) -> Claim:
        """Atomically: DONE if recorded done; else take the claim if free or expired."""

    @abc.abstractmethod
    async def _complete(self, key: str, token: str) -> bool | None:
        """Record ``key`` as done (kept ``retention`` seconds) and drop the claim.

        Records "done" whoever holds the claim. Returns whether ``token`` still held it
        (``False``: the lease lapsed, another delivery may have run the handler; ``None``:
        the store cannot tell).
        """

    @abc.abstractmethod
    async def _release(self, key: str, token: str) -> None:
        """Drop the claim if ``token`` still holds it."""

    async def _renew(self, key: str, token: str) -> bool:
        """Extend the lease if ``token`` still holds the claim."""
        return True

    async def _wait_change(self, key: str, delay: float) -> None:
        """Pause until the claim on ``key`` may have changed (polling by default)."""
        await asyncio.sleep(delay)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op for MemoryInbox
        """Release the store's resources (connections, threads)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class MemoryInbox(Inbox):
    """An in-process inbox: duplicates are handled once per process (and per inbox object).

    Claims last until their handler returns or raises (a crash takes the whole memory with
    it, so no lease is needed); done IDs are forgotten after ``retention`` seconds;
    ``handler_timeout`` as for :class:`Inbox`. Use
    :class:`SqliteInbox` or :class:`RedisInbox` when several processes receive notifications.
    """

    heartbeat = False
    _settles_at_once = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = ("_complete", "_release", "_settle", "_settle_surely")
        if cls.heartbeat or any(name in cls.__dict__ for name in overrides):
            cls._settles_at_once = False

    def __init__(
        self,
        *,
        wait: float = 2.0,
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.monotonic,
        handler_timeout: float | None = None,
    ) -> None:
        super().__init__(wait=wait, retention=retention, handler_timeout=handler_timeout)
        self._clock = check_clock(clock)
        self._claims: dict[str, str] = {}
        self._done: dict[str, float] = {}  # insertion order == completion order
        self._changed: dict[str, asyncio.Event] = {}

    def _prune(self) -> None:
        horizon = self._clock() - self.retention
        while self._done:
            oldest = next(iter(self._done))
            if self._done[oldest] >= horizon:
                break
            del self._done[oldest]

    async def _claim(self, key: str, token: str) -> Claim:
        self._prune()
        if key in self._done:
            return Claim.DONE
        if key in self._claims:
            return Claim.HELD
        self._claims[key] = token
        return Claim.CLAIMED

    def _notify(self, key: str) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()

    async def _complete(self, key: str, token: str) -> bool:
        self._done.pop(key, None)
        self._done[key] = self._clock()
        held = self._claims.get(key) == token
        if held:
            del self._claims[key]
        self._notify(key)
        return held

    async def _release(self, key: str, token: str) -> None:
        if self._claims.get(key) == token:
            del self._claims[key]
        self._notify(key)

    async def _wait_change(self, key: str, delay: float) -> None:
        event = self._changed.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), delay)

    def __len__(self) -> int:
        """How many IDs are remembered as done."""
        self._prune()
        return len(self._done)

    def __repr__(self) -> str:
        return f"MemoryInbox(done={len(self._done)}, in_flight={len(self._claims)})"
