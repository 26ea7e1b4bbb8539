"""Argument checks shared by the notification classes: each raises ``ValidationError(field)``."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

from .._errors import ValidationError
from .._validation import seconds

__all__ = ["check_clock", "check_handler", "is_async_callable", "seconds"]


def check_clock(clock: object, name: str = "clock") -> Callable[[], float]:
    """``clock`` if it is callable (it returns seconds; called with no arguments)."""
    if not callable(clock):
        raise ValidationError(name, "must be a callable returning seconds")
    return clock


def is_async_callable(obj: object) -> bool:
    """Whether calling ``obj`` returns an awaitable, judged without calling it.

    True for ``async def`` functions, bound ``async def`` methods, ``functools.partial`` of
    either (nested partials too), objects whose class defines ``async def __call__``, and
    anything ``inspect.iscoroutinefunction`` recognises (``unittest.mock.AsyncMock``; on
    Python 3.12+ functions marked with ``inspect.markcoroutinefunction``). False for plain
    functions and methods, even ones that return a coroutine: the library cannot tell those
    from a handler that forgot ``async`` without calling them, and calling one runs its side
    effect.
    """
    # The common cases, decided without inspect's unwrapping (checked on every delivery):
    # an ``async def`` function, and a bound ``async def`` method (``verifier.parse``).
    if type(obj) is types.MethodType:
        obj = obj.__func__
    if type(obj) is types.FunctionType and obj.__code__.co_flags & inspect.CO_COROUTINE:
        return True
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    if inspect.isroutine(obj) or isinstance(obj, type):
        return False  # a plain function, method or builtin; calling a class builds an object
    # The class's __call__ (what calling the object runs), not an attribute of the instance.
    return callable(obj) and inspect.iscoroutinefunction(type(obj).__call__)


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
