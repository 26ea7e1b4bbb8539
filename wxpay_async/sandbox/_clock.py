"""The sandbox's two clocks: wall time for signatures, scaled time for simulated waits."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

__all__ = ["CHINA_TZ", "SimClock", "compact", "rfc3339"]

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


class SimClock:
    """Simulated time that runs ``1 / time_scale`` times faster than the wall clock.

    ``time_scale`` is real seconds per simulated second: with ``0.001`` the 15 s first retry of a
    notification takes 15 ms, and WeChat's "about one minute" review queue takes 60 ms.
    Signature timestamps always use the real wall clock, because clients check them against
    their own.
    """

    def __init__(self, time_scale: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._wall = wall
        self._start_wall = wall()
        self._start_mono = time.monotonic()

    def wall(self) -> float:
        """Real Unix time (signature timestamps, replay windows)."""
        return self._wall()

    def now(self) -> float:
        """Simulated Unix time."""
        return self._start_wall + (time.monotonic() - self._start_mono) / self.time_scale

    def now_dt(self) -> dt.datetime:
        """Simulated time as an aware datetime in Beijing time (what WeChat prints)."""
        return dt.datetime.fromtimestamp(self.now(), CHINA_TZ).replace(microsecond=0)

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds last on the wall clock."""
        return max(0.0, simulated * self.time_scale)

    async def sleep(self, simulated: float) -> None:
        """Sleep for ``simulated`` seconds of sandbox time."""
        await asyncio.sleep(self.real_seconds(simulated))

    def call_later(self, simulated: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        """Run ``callback`` after ``simulated`` seconds of sandbox time."""
        return asyncio.get_running_loop().call_later(self.real_seconds(simulated), callback)


def rfc3339(moment: dt.datetime) -> str:
    """``2024-01-02T03:04:05+08:00``."""
    return moment.isoformat(timespec="seconds")


def compact(moment: dt.datetime) -> str:
    """PayScore's ``yyyyMMddHHmmss`` in Beijing time."""
    return moment.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S")
