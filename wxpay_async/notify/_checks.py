"""Argument checks shared by the notification classes: each raises ``ValidationError(field)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import ValidationError
from .._validation import is_async_callable, seconds

__all__ = ["check_clock", "check_handler", "is_async_callable", "seconds"]


def check_clock(clock: object, name: str = "clock") -> Callable[[], float]:
    """``clock`` if it is callable (it returns seconds; called with no arguments)."""
    if not callable(clock):
        raise ValidationError(name, "must be a callable returning seconds")
    return clock


def check_handler(handler: Any, name: str = "handler") -> None:
    """Refuse a handler that is not an async callable (see :func:`is_async_callable`).

    Checked before any delivery is claimed: a plain ``def handler(n)`` would run its side
    effect, then fail on ``await None``; the claim would be released and every redelivery
    would run the side effect again.
    """
    if not callable(handler):
        raise ValidationError(name, f"must be an async callable, got {type(handler).__name__}")
    if not is_async_callable(handler):
        raise ValidationError(
            name,
            "must be an async function (async def), a bound async method, a partial of one, "
            "or an object with async def __call__; wrap a plain function in an async def",
        )
