"""attrs validators that raise :class:`ValidationError` naming the field and the rule.

``None`` always passes (optional fields default to ``None``); requiredness is the converter's
job, so a missing field and a bad value produce distinct messages.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import types
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._errors import ValidationError

__all__ = [
    "check_text",
    "count",
    "each",
    "https_url",
    "is_async_callable",
    "is_printable_text",
    "seconds",
    "text",
    "utf8_at_most",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def text(
    min_len: int = 1,
    max_len: int | None = None,
    *,
    pattern: str | None = None,
    describe: str | None = None,
) -> Validator:
    """A string of ``min_len..max_len`` characters, optionally matching ``pattern`` in full."""
    # ASCII: ``\d`` must not match Arabic-Indic or full-width digits on the slow path.
    compiled = re.compile(pattern, re.ASCII) if pattern else None

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        # The common case, decided here: an ASCII string that fits (no plane check needed).
        if (
            type(value) is str
            and value.isascii()
            and min_len <= len(value)
            and (max_len is None or len(value) <= max_len)
            and (compiled is None or compiled.fullmatch(value))
        ):
            return
        _check_text(attribute.name, value, min_len, max_len, compiled, describe)

    return check


def seconds(name: str, value: object, *, zero_ok: bool = False) -> float:
    """``value`` as a float: a finite number of seconds, > 0 (or >= 0 with ``zero_ok``).

    NaN and infinity are refused: every comparison with NaN is false, so ``window=nan`` would
    switch the replay check off and ``wait=nan`` would poll forever, and an infinite lease
    never frees a crashed process's claim.
    """
    rule = "must be a finite number of seconds " + (">= 0" if zero_ok else "> 0")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValidationError(name, rule)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        raise ValidationError(name, rule) from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise ValidationError(name, rule)
    return number


def check_text(field: str, value: Any, *, min_len: int = 1, max_len: int | None = None) -> str:
    """``value`` if it is a string of ``min_len..max_len`` characters (outside any model).

    For a lone argument such as a path parameter: building a one-field model only to read the
    value back cost ~5 µs per call.
    """
    _check_text(field, value, min_len, max_len, None, None)
    return str(value)


def _check_text(
    name: str,
    value: Any,
    min_len: int,
    max_len: int | None,
    compiled: re.Pattern[str] | None,
    describe: str | None,
) -> None:
    if not isinstance(value, str):
        raise ValidationError(name, f"must be a string, got {type(value).__name__}")
    n = len(value)
    if n < min_len:
        rule = "must not be empty" if min_len == 1 else f"must be at least {min_len} characters"
        raise ValidationError(name, rule)
    if max_len is not None and n > max_len:
        raise ValidationError(name, f"must be at most {max_len} characters (got {n})")
    if compiled is not None and not compiled.fullmatch(value):
        raise ValidationError(name, describe or f"must match {compiled.pattern}")
    if value.isascii():
        return
    try:
        value.encode()
    except UnicodeEncodeError:  # `from None`: its text would quote the value (a contact's)
        raise ValidationError(name, "must be valid Unicode text (no lone surrogates)") from None
    if any(ord(ch) > 0xFFFF for ch in value):
        # WeChat Pay accepts only 1-3 byte UTF-8 characters (no emoji / supplementary plane).
        raise ValidationError(
            name, "must not contain characters outside the Basic Multilingual Plane"
        )


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


def is_printable_text(value: str) -> bool:
    """Printable text, spaces of every kind included (a name may hold U+3000 or U+00A0).

    ``str.isprintable`` refuses every space but U+0020; this refuses only control, format
    (bidi overrides among them), private-use, unassigned and surrogate code points and line
    or paragraph separators.
    """
    return value.isprintable() or all(
        ch.isprintable() or unicodedata.category(ch) == "Zs" for ch in value
    )


def utf8_at_most(limit: int) -> Validator:
    """Printable text whose UTF-8 encoding is at most ``limit`` bytes (encrypted plaintexts).

    Printable as :func:`is_printable_text` has it: what a PKCS#1 v1.5 field decrypted from an
    answer must be (``crypto.decrypt_field``), so nothing is sent that could not be read back.
    """

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        _check_text(attribute.name, value, 1, None, None, None)
        if not is_printable_text(value):
            raise ValidationError(
                attribute.name, "must be printable text (no control or format characters)"
            )
        size = len(value.encode())
        if size > limit:
            raise ValidationError(
                attribute.name, f"must be at most {limit} bytes as UTF-8 (got {size})"
            )

    return check


def https_url(max_len: int) -> Validator:
    """An absolute ``https://`` URL without a query string, at most ``max_len`` characters."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        _check_text(attribute.name, value, 1, max_len, None, None)
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            # urlsplit drops tabs and line breaks, but the string itself is what is sent.
            raise ValidationError(attribute.name, "must not contain spaces or control characters")
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:  # an unclosed IPv6 bracket, say
            raise ValidationError(attribute.name, "must be an absolute https:// URL") from None
        if parts.scheme != "https" or not host:
            raise ValidationError(attribute.name, "must be an absolute https:// URL")
        if parts.query or parts.fragment:
            raise ValidationError(attribute.name, "must not carry a query string or fragment")

    return check


def _check_sequence(name: str, value: Any) -> None:
    # A bare string is a sequence too: each character would pass as a one-letter item.
    if not isinstance(value, (list, tuple)):
        raise ValidationError(name, f"must be a list, got {type(value).__name__}")


def count(min_items: int = 1, max_items: int | None = None) -> Validator:
    """A sequence with ``min_items..max_items`` entries."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        _check_sequence(attribute.name, value)
        n = len(value)
        if n < min_items:
            raise ValidationError(attribute.name, f"must have at least {min_items} item(s)")
        if max_items is not None and n > max_items:
            raise ValidationError(attribute.name, f"must have at most {max_items} items (got {n})")

    return check


def each(min_len: int = 1, max_len: int | None = None, *, pattern: str | None = None) -> Validator:
    """Every item of a sequence is a string of ``min_len..max_len`` characters."""
    # ASCII: ``\d`` must not match Arabic-Indic or full-width digits on the slow path.
    compiled = re.compile(pattern, re.ASCII) if pattern else None

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Sequence[Any] | None) -> None:
        if value is None:
            return
        _check_sequence(attribute.name, value)
        for i, item in enumerate(value):
            _check_text(f"{attribute.name}[{i}]", item, min_len, max_len, compiled, None)

    return check
