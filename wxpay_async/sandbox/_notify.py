"""Outgoing notifications: encrypted, signed envelopes (spec §B8) retried on WeChat's schedules.

Delivery only ever reaches loopback addresses: a ``notify_url`` must be https (as WeChat
requires), so tests map it to a local server with ``route(url_prefix, target_base)``. A URL
with no route is recorded as undeliverable and never contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import secrets
import string
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs

from ..crypto import AEAD_ALGORITHM, aead_encrypt
from ._clock import SimClock, rfc3339
from ._faults import Faults
from ._protocol import ResponseSigner, json_bytes

__all__ = [
    "GENERIC_SCHEDULE",
    "PAYSCORE_SCHEDULE",
    "Delivery",
    "Notifier",
    "is_loopback_url",
    "schedule",
]

log = logging.getLogger("wxpay_async.sandbox")

#: Seconds before each attempt. §B8: first at once, then 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/
#: 3h/3h/3h/6h/6h (about 24 h 4 min in all).
GENERIC_SCHEDULE = (
    (0, 15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600) + (10800,) * 3 + (21600,) * 2
)
#: §A3.4: 0s/15s/15s/30s/180s/1800s x4/3600s, then hourly, giving up after three days.
PAYSCORE_SCHEDULE = (0, 15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600)
_PAYSCORE_HORIZON = 3 * 24 * 3600
_NONCE_ALPHABET = string.ascii_letters + string.digits
_ATTEMPT_TIMEOUT = 5.0  # WeChat waits about five seconds for an answer


def schedule(kind: str) -> Iterator[float]:
    """The waits (simulated seconds) before each attempt of a notification of ``kind``."""
    if kind == "payscore":
        yield from PAYSCORE_SCHEDULE
        elapsed = sum(PAYSCORE_SCHEDULE)
        while elapsed + 3600 <= _PAYSCORE_HORIZON:
            elapsed += 3600
            yield 3600
    else:
        yield from GENERIC_SCHEDULE


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (the only place the sandbox delivers to)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen(kw_only=True)
class Delivery:
    """One delivery attempt, as ``sb.deliveries`` records it."""

    notification_id: str
    event_type: str
    url: str
    target: str | None
    attempt: int
    status: int | None
    error: str | None = None
    #: ``"normal"``, ``"duplicate"`` or ``"signtest"`` (a fault-injected copy).
    variant: str = "normal"
    at: float = attrs.field(factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status in (200, 204)


@attrs.frozen(kw_only=True)
class _Envelope:
    notification_id: str
    event_type: str
    url: str
    body: bytes
    kind: str


class Notifier:
    """Builds, signs and delivers notifications in background tasks."""

    def __init__(
        self,
        *,
        signer: ResponseSigner,
        apiv3_key: bytes,
        clock: SimClock,
        faults: Faults,
    ) -> None:
        self._signer = signer
        self._apiv3_key = apiv3_key
        self._clock = clock
        self._faults = faults
        self.routes: list[tuple[str, str]] = []
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    def route(self, url_prefix: str, target_base: str) -> None:
        """Deliver URLs starting with ``url_prefix`` to ``target_base`` + the rest of the URL."""
        if not is_loopback_url(target_base):
            raise ValueError("target_base must be a loopback URL (127.0.0.0/8, ::1, localhost)")
        self.routes.insert(0, (url_prefix, target_base))

    def resolve(self, url: str) -> str | None:
        for prefix, base in self.routes:
            if url.startswith(prefix):
                rest = url[len(prefix) :]
                if rest and not rest.startswith(("/", "?")) and not base.endswith("/"):
                    rest = "/" + rest
                if base.endswith("/") and rest.startswith("/"):
                    rest = rest[1:]
                return base + rest
        return url if is_loopback_url(url) else None

    def send(
        self,
        url: str,
        *,
        event_type: str,
        summary: str,
        resource: dict[str, Any],
        associated_data: str,
        original_type: str,
        kind: str = "generic",
    ) -> str:
        """Queue a notification; returns its id. Delivery runs in the background."""
        nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(12))
        notification_id = str(uuid.uuid4())
        envelope = {
            "id": notification_id,
            "create_time": rfc3339(self._clock.now_dt()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": AEAD_ALGORITHM,
                "ciphertext": aead_encrypt(
                    self._apiv3_key, nonce, associated_data, json_bytes(resource)
                ),
                "associated_data": associated_data,
                "nonce": nonce,
            },
        }
        item = _Envelope(
            notification_id=notification_id,
            event_type=event_type,
            url=url,
            body=json_bytes(envelope),
            kind=kind,
        )
        task = asyncio.get_running_loop().create_task(self._deliver(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return notification_id

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - a documented API
        """Wait until every queued notification was delivered or given up."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self._tasks)} notification(s) still being delivered")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- delivery ----------------------------------------------------------------------------------

    async def _deliver(self, item: _Envelope) -> None:
        target = self.resolve(item.url)
        if target is None:
            self._record(
                item, None, 1, None, "no route to this notify_url (see route_notifications)"
            )
            return
        fault = self._faults.take_notification()
        if fault == "signtest":
            probe = self._signer.probe_signature()
            await self._attempt(item, target, 1, "signtest", signature=probe)
        attempt = 0
        for wait in schedule(item.kind):
            if wait:
                await self._clock.sleep(wait)
            attempt += 1
            if await self._attempt(item, target, attempt, "normal"):
                if fault == "duplicate":
                    await self._attempt(item, target, attempt + 1, "duplicate")
                return
        log.info("notification %s: giving up after %d attempts", item.notification_id, attempt)

    async def _attempt(
        self,
        item: _Envelope,
        target: str,
        attempt: int,
        variant: str,
        *,
        signature: str | None = None,
    ) -> bool:
        headers = self._signer.headers(item.body, signature=signature)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = "Mozilla/4.0 (wxpay_async sandbox notifier)"
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_ATTEMPT_TIMEOUT)
            )
        try:
            async with self._session.post(target, data=item.body, headers=headers) as response:
                await response.read()
                status: int | None = response.status
                error = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        self._record(item, target, attempt, status, error, variant)
        return status in (200, 204)

    def _record(
        self,
        item: _Envelope,
        target: str | None,
        attempt: int,
        status: int | None,
        error: str | None,
        variant: str = "normal",
    ) -> None:
        self.deliveries.append(
            Delivery(
                notification_id=item.notification_id,
                event_type=item.event_type,
                url=item.url,
                target=target,
                attempt=attempt,
                status=status,
                error=error,
                variant=variant,
            )
        )
