"""Concurrent, crash-safe HK sub-merchant onboarding.

``onboard_many`` streams applications (any iterable or async iterable, never loaded whole),
runs at most ``concurrency`` of them at once, and journals each job (see
:mod:`wxpay_async.batch._journal`) so that:

* no job is created twice: its Idempotency-Key and exact body bytes are committed before the
  request leaves, and every later attempt or resumed run sends those same bytes under that key;
* no result is lost: each outcome is committed before it is yielded;
* one bad row never stops the batch: validation and business errors are recorded per job.

Re-running with the same journal skips finished jobs (their stored results are yielded again,
marked ``from_journal``), re-sends jobs that were in flight when the process died, and retries
jobs that failed with a retryable error (5xx, 429, transport, verification). A failure that is
not retryable (WeChat refused the request: 400, 401, 403, ...) is final for its content; a
corrected row gets a fresh try, and ``retry_failed=True`` tries the same content again once the
cause is fixed elsewhere (a key, a permission, a configuration).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from pathlib import Path
from typing import Any, Literal

import attrs

from .._client import WxPayClient
from .._converter import one_shot_encoder, unstructure
from .._errors import (
    APIError,
    RateLimitedError,
    ServerError,
    SignatureVerificationError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
)
from ..crypto import Padding
from ..crypto.fields import padding_of
from ..products import hk_merchants
from ._journal import JobRecord, JobState, Journal, Settled

__all__ = ["Job", "JobResult", "Journal", "Progress", "onboard_many"]

log = logging.getLogger("wxpay_async")

_DONE = object()  # end-of-batch marker on the results queue
_RETRYABLE_ERRORS = (
    ServerError,
    RateLimitedError,
    TransportError,
    SignatureVerificationError,
    UnexpectedResponseError,
)


@attrs.frozen(kw_only=True)
class Job:
    """One onboarding: an application (model or wire mapping) and an optional stable id."""

    #: Not in ``repr()``: a wire mapping holds the contact's plaintext.
    application: Any = attrs.field(repr=False)
    job_id: str | None = None


@attrs.frozen(kw_only=True)
class JobResult:
    """The outcome of one job, as committed to the journal."""

    job_id: str
    ok: bool
    sub_mchid: str | None = None
    verification_status: str | None = None
    idempotency_key: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: Whether a later run would try this job again (without ``retry_failed``, which also
    #: tries final failures).
    retryable: bool = False
    #: True when the job had already finished in an earlier run and nothing was sent now.
    from_journal: bool = False

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Progress:
    done: int
    failed: int
    in_flight: int
    elapsed: float

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def rate(self) -> float:
        """Finished jobs per second so far."""
        return self.finished / self.elapsed if self.elapsed > 0 else 0.0


@attrs.frozen
class _Unit:
    job_id: str
    content_hash: str
    application: Any = attrs.field(repr=False)
    #: Why the job fails before anything is tried (an id that cannot be stored), or ``None``.
    problem: str | None = None


#: Canonical JSON for content hashes (one encoder: ``json.dumps`` with options builds one a call).
#: Job ids derive from it and are stored in journals: its output must never change.
_CANONICAL = one_shot_encoder(json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str))


def _content_hash(application: Any) -> str:
    plain = unstructure(application) if attrs.has(type(application)) else application
    # surrogatepass: a lone surrogate (valid JSON, not valid Unicode) still hashes, so its row
    # fails validation alone; text without one encodes as before (ids in journals unchanged).
    return hashlib.sha256(_CANONICAL(plain).encode("utf-8", "surrogatepass")).hexdigest()


def _unit(item: Any) -> _Unit:
    if type(item) is _Unit:  # already identified (the CLI's shards: it hashes every row once)
        return item
    if isinstance(item, Job):
        application, job_id = item.application, item.job_id
    elif (
        isinstance(item, Mapping)
        and set(item) <= {"job_id", "application"}
        and "application" in item
    ):
        application, job_id = item["application"], item.get("job_id")
    else:
        application, job_id = item, None
    digest = _content_hash(application)
    given = "" if job_id is None else str(job_id)
    problem = None
    if not given.isascii():
        try:
            given.encode()
        except UnicodeEncodeError:
            # The journal cannot store it: the job fails alone, under the id with its lone
            # surrogates escaped (``bad-\\ud800``), which its result then shows.
            given = given.encode("utf-8", "backslashreplace").decode()
            problem = "job_id: must be valid Unicode text (it holds a lone surrogate)"
    return _Unit(
        job_id=given or f"sha256:{digest[:32]}",
        content_hash=digest,
        application=application,
        problem=problem,
    )


def _stored_result(record: JobRecord) -> JobResult:
    return JobResult(
        job_id=record.job_id,
        ok=record.state is JobState.DONE,
        sub_mchid=record.sub_mchid,
        verification_status=record.verification_status,
        idempotency_key=record.idempotency_key,
        error_code=record.error_code,
        error_message=record.error_message,
        retryable=record.retryable,
        from_journal=True,
    )


class _Runner:
    """Runs jobs and hands each :class:`JobResult` to ``report`` once it is in the journal."""

    def __init__(
        self,
        client: WxPayClient,
        journal: Journal,
        padding: Padding | None,
        store_photos_as: Literal["string", "array"] | None,
        report: Callable[[JobResult | BaseException], None],
        *,
        retry_failed: bool = False,
    ) -> None:
        self.client = client
        self.journal = journal
        self.retry_failed = retry_failed
        #: Final failures written before this moment are retried under ``retry_failed``; the
        #: ones written since are this run's (a job listed twice) or a concurrent run's.
        self.started_at = time.time()
        self.group = journal.group_commit()
        self.padding = padding
        self.store_photos_as = store_photos_as
        self.report = report
        self.active: set[str] = set()
        #: Jobs whose last row is posted and not yet committed (a subset of ``active``).
        self.committing: set[str] = set()
        # A journal with no rows when the batch starts cannot know this batch's jobs: each
        # job skips its lookup and claims its row outright (expected runs 0). A claim that
        # fails means a row appeared meanwhile (another run, an earlier copy of the job);
        # that job then takes the careful path, which reads the row first.
        self.fresh = journal.is_empty()

    async def run(self, unit: _Unit) -> None:
        lookup = not self.fresh
        while unit.job_id in self.active:
            if unit.job_id in self.committing:
                # A copy of a job that has just finished: once that job's row is committed
                # (it is queued before this no-op), the copy reads it, as it would have one
                # turn later: the stored result, or a re-send of a retryable failure.
                await self.group.write(_nothing)
                lookup = True
                continue
            self.report(
                JobResult(
                    job_id=unit.job_id,
                    ok=False,
                    error_code="DUPLICATE_JOB",
                    error_message="the same job appears twice in this batch; it runs once",
                )
            )
            return
        self.active.add(unit.job_id)
        try:
            result = await self._run(unit, lookup=lookup)
        except BaseException:
            self.active.discard(unit.job_id)
            raise
        if result is not None:
            self.active.discard(unit.job_id)
            self.report(result)

    def _settled(self, job_id: str, result: JobResult) -> Settled:
        self.committing.add(job_id)

        def settled(exc: BaseException | None, written: object) -> None:
            self.committing.discard(job_id)
            self.active.discard(job_id)
            if exc is not None:
                self.report(exc)
            elif written is False:
                # A failure not written: another run finished the job under the same key.
                try:
                    record = self.journal.get(job_id)
                except sqlite3.Error as error:  # as a failed commit: the batch stops with it
                    self.report(error)
                    return
                self.report(result if record is None else _stored_result(record))
            else:
                self.report(result)

        return settled

    async def _run(self, unit: _Unit, *, lookup: bool, lost: bool = False) -> JobResult | None:
        """The job's result, or ``None`` once its last row is posted (reported at the commit).

        ``lookup``: read the job's row first (else: the journal was empty at the start).
        ``lost``: a write of this job found a row it had not read; a ``prepared`` one is
        another run's request in flight, which this run leaves to it.
        """
        record = self.journal.get(unit.job_id) if lookup else None
        if record is not None and self._finished(record, unit):
            return _stored_result(record)
        if unit.problem is not None:  # before any retry: it cannot be stored as given
            return await self._failed(
                unit, "VALIDATION_ERROR", unit.problem, retryable=False, seen=record, lookup=lookup
            )
        if lost and record is not None and record.state is JobState.PREPARED:
            return _claimed_elsewhere(unit)
        if (
            record is not None
            and record.body
            and record.state is not JobState.DONE
            and (
                record.state is JobState.PREPARED
                or record.retryable
                or (self._retry_on_demand(record) and record.content_hash == unit.content_hash)
            )
        ):
            # What WeChat may already have seen: same key, same bytes. Its outcome is the
            # stored content's (a corrected row's content is tried only after it). A refused
            # request retried on demand goes out as it was refused: under its key, WeChat
            # answers for the one application whatever happened to it.
            sent_hash = record.content_hash or unit.content_hash
            prepared = hk_merchants.PreparedCreate(
                idempotency_key=record.idempotency_key or "",
                body=record.body,
                wechatpay_serial=record.wechatpay_serial or "",
            )
            # A claim like a new key's: a run that re-sends a refused request on demand
            # (retry_failed) may race one that claims a corrected row under a new key.
            claimed = await self.group.write(
                self.journal.resending, unit.job_id, expected_runs=record.runs
            )
            if not claimed:
                return _claimed_elsewhere(unit)
        else:
            try:
                prepared = await hk_merchants.prepare_create(
                    self.client,
                    unit.application,
                    padding=self.padding,
                    store_photos_as=self.store_photos_as,
                )
            except ValidationError as exc:
                return await self._failed(
                    unit, "VALIDATION_ERROR", str(exc), retryable=False, seen=record, lookup=lookup
                )
            except Exception as exc:
                return await self._failed(
                    unit, type(exc).__name__, str(exc), retryable=True, seen=record, lookup=lookup
                )
            sent_hash = unit.content_hash
            claimed = await self.group.write(
                self.journal.prepared,
                unit.job_id,
                unit.content_hash,
                prepared.idempotency_key,
                prepared.body,
                prepared.wechatpay_serial,
                expected_runs=0 if record is None else record.runs,
            )
            if not claimed:
                return await self._lost(unit, lookup)
        key = prepared.idempotency_key
        try:
            created = await hk_merchants.send_prepared(self.client, prepared)
        except APIError as exc:
            retryable = isinstance(exc, _RETRYABLE_ERRORS)
            self._failed_after_sending(unit, sent_hash, exc.code, exc.message, retryable, key)
            return None
        except _RETRYABLE_ERRORS as exc:
            self._failed_after_sending(unit, sent_hash, type(exc).__name__, str(exc), True, key)
            return None
        except Exception as exc:
            log.exception("job %s: unexpected error", unit.job_id)
            self._failed_after_sending(unit, sent_hash, type(exc).__name__, str(exc), True, key)
            return None
        status = None if created.verification_status is None else str(created.verification_status)
        result = JobResult(
            job_id=unit.job_id,
            ok=True,
            sub_mchid=created.sub_mchid,
            verification_status=status,
            idempotency_key=key,
        )
        self.group.post(
            self.journal.done,
            unit.job_id,
            created.sub_mchid,
            status,
            then=self._settled(unit.job_id, result),
        )
        return None

    def _retry_on_demand(self, record: JobRecord) -> bool:
        """Whether ``retry_failed`` tries this final failure again: an earlier run's only."""
        return self.retry_failed and record.updated_at < self.started_at

    def _finished(self, record: JobRecord, unit: _Unit) -> bool:
        if record.state is JobState.DONE:
            return True
        if record.state is JobState.FAILED and not record.retryable:
            if self._retry_on_demand(record):
                return False
            # A corrected row (new content under the same id) gets a fresh try.
            return record.content_hash == unit.content_hash
        return False

    async def _failed(
        self,
        unit: _Unit,
        code: str,
        message: str,
        *,
        retryable: bool,
        seen: JobRecord | None,
        lookup: bool,
    ) -> JobResult | None:
        """Record and report a failure before sending: written only if no other run has
        claimed the job since ``seen`` (the row as read), so it never overwrites that run's
        key and bytes."""
        written = await self.group.write(
            self.journal.failed,
            unit.job_id,
            unit.content_hash,
            code,
            message,
            retryable=retryable,
            keep_request=False,
            expected_runs=0 if seen is None else seen.runs,
        )
        if not written:
            return await self._lost(unit, lookup)
        return _failure(unit, code, message, retryable)

    async def _lost(self, unit: _Unit, looked: bool) -> JobResult | None:
        """A claim or a failure of ``unit`` was not written: a row appeared since the job read
        it (``looked``), or existed all along on a journal that was empty at the start."""
        if looked:
            return _claimed_elsewhere(unit)
        return await self._run(unit, lookup=True, lost=True)

    def _failed_after_sending(
        self, unit: _Unit, sent_hash: str, code: str, message: str, retryable: bool, key: str
    ) -> None:
        """Post a failure after sending (the key and bytes stay for a retry); ``None``.

        Recorded under ``sent_hash``, the content whose bytes went out: after a re-send of a
        stored request, that is the stored content, so a corrected row is still tried next.
        """
        result = _failure(unit, code, message, retryable, key)
        self.group.post(
            self.journal.failed,
            unit.job_id,
            sent_hash,
            code,
            message,
            retryable=retryable,
            keep_request=True,
            then=self._settled(unit.job_id, result),
        )


def _failure(
    unit: _Unit, code: str, message: str, retryable: bool, key: str | None = None
) -> JobResult:
    return JobResult(
        job_id=unit.job_id,
        ok=False,
        idempotency_key=key,
        error_code=code,
        error_message=message,
        retryable=retryable,
    )


def _nothing() -> None:
    """A write that writes nothing: awaiting it waits for the commit of what was queued first."""


def _claimed_elsewhere(unit: _Unit) -> JobResult:
    # Another run on this journal file wrote the job between our read and our write: it
    # sends the job under its key; a second key would onboard it twice.
    return JobResult(
        job_id=unit.job_id,
        ok=False,
        error_code="DUPLICATE_JOB",
        error_message="another run on this journal claimed the job first",
        retryable=True,
    )


async def onboard_many(
    client: WxPayClient,
    applications: Iterable[Any] | AsyncIterable[Any],
    *,
    concurrency: int = 16,
    journal: str | Path | Journal = "onboarding.db",
    on_progress: Callable[[Progress], None] | None = None,
    padding: Padding | None = None,
    store_photos_as: Literal["string", "array"] | None = None,
    retry_failed: bool = False,
) -> AsyncGenerator[JobResult, None]:
    """Onboard many HK sub-merchants; yields one :class:`JobResult` per job as each finishes.

    Items may be application mappings/models (job id = hash of the content), :class:`Job`
    objects, or ``{"job_id": ..., "application": {...}}`` mappings. Stopping the iteration (or
    cancelling) leaves in-flight jobs ``prepared`` in the journal; the next run re-sends them
    with their stored key and bytes. ``padding`` and ``store_photos_as`` choose the wire
    forms the spec leaves open, as for :func:`hk_merchants.prepare_create` (they apply to
    requests prepared now; a re-sent request keeps its stored bytes).

    ``retry_failed=True`` also runs jobs whose journal holds a final failure for this same
    content, written before this run: a request WeChat refused is sent again with its stored
    key and bytes unchanged (fix what it refused first: the merchant's key, a permission; a
    refusal of the bytes themselves needs a corrected row), and a job refused before sending
    (validation) is prepared again. Each such job is tried once per run.
    """
    if type(concurrency) is not int or concurrency < 1:
        raise ValidationError("concurrency", "must be an integer of at least 1")
    if padding is not None:
        padding = padding_of(padding)
    if store_photos_as not in (None, "string", "array"):
        raise ValidationError("store_photos_as", "must be 'string' or 'array'")
    if type(retry_failed) is not bool:
        raise ValidationError("retry_failed", "must be True or False")
    # A plain iterable is read by the workers themselves, one row each time one is free (no
    # task or queue in between), through a generator: once the input ends or fails, or a row
    # cannot be hashed, it stays finished, so no row after that one is read or sent. An async
    # one is read by a task of its own (timeouts, context variables and locks inside it belong
    # to one task) that hands the workers its rows through a queue. The iterator is taken
    # before the journal opens: input that is not iterable fails with nothing to close.
    streamed: AsyncIterator[Any] | None = None
    plain: Iterator[_Unit] | None = None
    if isinstance(applications, AsyncIterable):
        streamed = aiter(applications)
    else:
        plain = (_unit(item) for item in iter(applications))
    inbox: asyncio.Queue[_Unit | None] = asyncio.Queue(maxsize=concurrency * 2)
    own_journal = not isinstance(journal, Journal)
    store = Journal(journal) if not isinstance(journal, Journal) else journal
    outbox: asyncio.Queue[object] = asyncio.Queue()
    runner = _Runner(
        client, store, padding, store_photos_as, outbox.put_nowait, retry_failed=retry_failed
    )
    # Backpressure from a slow consumer: a worker takes a new job only while fewer than
    # 2 x concurrency results wait to be yielded, so memory stays flat however long the input.
    slots = asyncio.Semaphore(concurrency * 2)
    started = time.monotonic()
    counts = {"done": 0, "failed": 0}

    async def read(source: AsyncIterator[Any]) -> None:
        # No try/finally: a failed or cancelled reader must not block on a full queue; its
        # exception reaches the consumer, which then cancels the workers.
        async for item in source:
            await inbox.put(_unit(item))
        for _ in range(concurrency):
            await inbox.put(None)

    async def work() -> None:
        while True:
            await slots.acquire()
            unit = await inbox.get() if plain is None else next(plain, None)
            if unit is None:
                slots.release()
                return
            await runner.run(unit)

    tasks = (
        [] if streamed is None else [asyncio.create_task(read(streamed), name="wxpay-batch-reader")]
    )
    tasks += [
        asyncio.create_task(work(), name=f"wxpay-batch-worker-{i}") for i in range(concurrency)
    ]
    everything = asyncio.gather(*tasks)

    def finished(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        # The workers' last rows were flushed before this callback runs (their flush was
        # scheduled when they were posted); flushing again makes that order explicit: every
        # result is on the outbox before the end marker.
        runner.group.flush()
        outbox.put_nowait(fut.exception() or _DONE)

    everything.add_done_callback(finished)
    try:
        while True:
            item = await outbox.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, JobResult)
            slots.release()
            counts["done" if item.ok else "failed"] += 1
            if on_progress is not None:
                on_progress(
                    Progress(
                        done=counts["done"],
                        failed=counts["failed"],
                        in_flight=len(runner.active),
                        elapsed=time.monotonic() - started,
                    )
                )
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runner.group.flush()
        if own_journal:
            store.close()
