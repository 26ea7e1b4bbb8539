"""Fault injection: queued outcomes per route, and seeded random rates.

Kinds (what the next matching request gets):

``system_error``     500 SYSTEM_ERROR, nothing processed
``rate_limited``     429 with the route family's code (FREQUENCY_LIMITED for mainland PayScore,
                     FREQUENCY_LIMIT_EXCEED for /v3/global, RATELIMIT_EXCEEDED otherwise)
``unavailable``      503 SERVICE_UNAVAILABLE, nothing processed
``delay``            wait ``seconds`` (real seconds) before processing
``drop_after``       process and commit, then close the connection without answering
``reset_before``     close the connection without processing
``unsigned``         process, answer without any ``Wechatpay-*`` signature header
``bad_signature``    process, answer with a signature that does not verify
``signtest``         process, answer with a ``WECHATPAY/SIGNTEST/`` probe signature
``stale_timestamp``  process, answer correctly signed but 10 minutes old

Notification faults (``queue_notification``): ``duplicate`` delivers the next notification a
second time after it succeeded; ``signtest`` sends a probe-signed copy before the real one.
"""

from __future__ import annotations

import random
import re
from collections import deque

import attrs

__all__ = ["FAULT_KINDS", "NOTIFICATION_FAULTS", "Fault", "Faults"]

FAULT_KINDS = (
    "system_error",
    "rate_limited",
    "unavailable",
    "delay",
    "drop_after",
    "reset_before",
    "unsigned",
    "bad_signature",
    "signtest",
    "stale_timestamp",
)
#: Kinds that only make sense on signed (v3) answers.
SIGNATURE_FAULTS = frozenset({"unsigned", "bad_signature", "signtest", "stale_timestamp"})
NOTIFICATION_FAULTS = ("duplicate", "signtest")
_ROUTE = re.compile(r"\*|(?:(?:GET|POST|PUT|PATCH|DELETE) )?/\S*")


@attrs.frozen
class Fault:
    """One injected outcome."""

    kind: str
    seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")


class Faults:
    """The fault plan of one sandbox (``sb.faults``).

    Routes are ``"METHOD /path"`` with either the concrete path or the template
    (``"GET /hk/v3/merchants/{sub_mchid}"``), a bare path (any method), or ``"*"``.
    Queued faults are used first (specific routes before ``"*"``), then the random rates.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._queues: dict[str, deque[Fault]] = {}
        self._rates: dict[str, tuple[float, Fault]] = {}
        self._notification: deque[str] = deque()
        self._rng = random.Random(seed)  # reproducible chaos, not security

    def queue(self, route: str, kind: str, times: int = 1, *, seconds: float = 0.0) -> None:
        """Give the next ``times`` requests matching ``route`` the fault ``kind``."""
        route = route.strip()
        if not _ROUTE.fullmatch(route):
            raise ValueError(f"route must be '*', '/path' or 'METHOD /path', got {route!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        fault = Fault(kind, seconds)
        self._queues.setdefault(route, deque()).extend([fault] * times)

    def set_rate(self, kind: str, rate: float, *, seconds: float = 0.0) -> None:
        """Apply ``kind`` to a random fraction ``rate`` of requests (0 removes it)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        fault = Fault(kind, seconds)
        if rate == 0:
            self._rates.pop(kind, None)
        else:
            self._rates[kind] = (rate, fault)
        if sum(r for r, _ in self._rates.values()) > 1.0:
            self._rates.pop(kind, None)
            raise ValueError("the rates of all kinds together must not exceed 1")

    def queue_notification(self, kind: str, times: int = 1) -> None:
        """Give the next ``times`` notifications the fault ``kind`` (duplicate, signtest)."""
        if kind not in NOTIFICATION_FAULTS:
            raise ValueError(f"notification fault must be one of {', '.join(NOTIFICATION_FAULTS)}")
        self._notification.extend([kind] * times)

    def clear(self) -> None:
        """Forget every queued fault and rate."""
        self._queues.clear()
        self._rates.clear()
        self._notification.clear()

    @property
    def pending(self) -> dict[str, list[str]]:
        """Queued faults by route (for inspection)."""
        return {route: [f.kind for f in q] for route, q in self._queues.items() if q}

    def take(self, method: str, path: str, template: str | None) -> Fault | None:
        """The fault for this request, if any (consumes a queued one)."""
        candidates = [f"{method} {path}", path]
        if template and template != path:
            candidates[1:1] = [f"{method} {template}", template]
        candidates.append("*")
        for route in candidates:
            queue = self._queues.get(route)
            if queue:
                return queue.popleft()
        if not self._rates:
            return None
        draw = self._rng.random()
        for rate, fault in self._rates.values():
            if draw < rate:
                return fault
            draw -= rate
        return None

    def take_notification(self) -> str | None:
        return self._notification.popleft() if self._notification else None


def rate_limit_code(path: str) -> str:
    """The 429 code each route family uses (they are spelled differently)."""
    if path.startswith("/v3/payscore/"):
        return "FREQUENCY_LIMITED"
    if path.startswith("/v3/global/"):
        return "FREQUENCY_LIMIT_EXCEED"
    return "RATELIMIT_EXCEEDED"
