"""A small declarative checker for request bodies, reporting like WeChat's PARAM_ERROR.

Each failure names the offending field as a JSON pointer (``/contact/email``,
``/domains/2``), the bad value (unless sensitive) and the rule it broke. Unknown keys are
ignored, as a JSON-schema-validating gateway with open objects does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._protocol import ApiFailure

__all__ = [
    "Arr",
    "Bool",
    "Int",
    "Obj",
    "Spec",
    "Str",
    "check",
    "obj",
    "pointer",
    "require_json_object",
]


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def pointer(*parts: str | int) -> str:
    """RFC 6901 JSON pointer for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _fail(path: tuple[str | int, ...], issue: str, value: Any, sensitive: bool) -> ApiFailure:
    shown = None if sensitive else value
    if isinstance(shown, (dict, list)):
        shown = None
    if isinstance(shown, str) and len(shown) > 256:
        shown = shown[:256] + "..."  # echo enough to recognise the value, not all of it
    return ApiFailure.param(pointer(*path), issue, value=shown)


@attrs.frozen
class Str:
    """A string of ``min_len..max_len`` characters (Basic Multilingual Plane only)."""

    max_len: int | None = None
    min_len: int = 1
    pattern: str | None = None
    choices: tuple[str, ...] | None = None
    describe: str | None = None
    sensitive: bool = False

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, str):
            raise _fail(path, "类型错误: must be a string", value, self.sensitive)
        if len(value) < self.min_len:
            raise _fail(path, "must not be empty", value, self.sensitive)
        if self.max_len is not None and len(value) > self.max_len:
            raise _fail(path, f"长度超限: at most {self.max_len} characters", value, self.sensitive)
        if not value.isascii() and _ASTRAL.search(value):
            # The API accepts only 1-3 byte UTF-8 characters (spec §B1).
            raise _fail(path, "contains a character outside the BMP", value, self.sensitive)
        if self.choices is not None and value not in self.choices:
            raise _fail(path, f"must be one of {', '.join(self.choices)}", value, self.sensitive)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _fail(path, self.describe or f"must match {self.pattern}", value, self.sensitive)


@attrs.frozen
class Int:
    minimum: int | None = None

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(path, "类型错误: must be an integer", value, False)
        if self.minimum is not None and value < self.minimum:
            raise _fail(path, f"must be at least {self.minimum}", value, False)


@attrs.frozen
class Bool:
    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, bool):
            raise _fail(path, "类型错误: must be a boolean", value, False)


@attrs.frozen
class Arr:
    item: Spec
    min_items: int = 1
    max_items: int | None = None

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, list):
            raise _fail(path, "类型错误: must be an array", value, False)
        if len(value) < self.min_items:
            raise _fail(path, f"must have at least {self.min_items} item(s)", None, False)
        if self.max_items is not None and len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} items", None, False)
        for i, item in enumerate(value):
            self.item.check(item, (*path, i))


@attrs.frozen
class Obj:
    """An object; ``required`` names the keys that must be present (and not null)."""

    fields: Mapping[str, Spec]
    required: frozenset[str] = frozenset()

    def check(self, value: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(value, dict):
            raise _fail(path, "类型错误: must be an object", value, False)
        for name, spec in self.fields.items():
            item = value.get(name)
            if item is None:
                if name in self.required:
                    raise _fail((*path, name), "缺少必填参数 (required)", None, False)
                continue
            spec.check(item, (*path, name))


Spec = Str | Int | Bool | Arr | Obj


def obj(required: Mapping[str, Spec], optional: Mapping[str, Spec] | None = None) -> Obj:
    """Shorthand: an object from its required and optional fields."""
    fields = {**required, **(optional or {})}
    return Obj(fields, frozenset(required))


def check(spec: Spec, value: Any) -> None:
    """Raise :class:`ApiFailure` (400 PARAM_ERROR) on the first rule ``value`` breaks."""
    spec.check(value, ())


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def require_json_object(body: bytes, content_type: str) -> dict[str, Any]:
    """Parse a JSON request body; WeChat answers malformed bodies with PARAM_ERROR."""
    if content_type != "application/json":
        raise ApiFailure.invalid(
            f"Content-Type must be application/json for this API (got {content_type or 'none'})"
        )
    try:
        # Decoded as UTF-8 first: json.loads(bytes) would also guess UTF-16/32 and take NaN or
        # Infinity, none of which WeChat's JSON gateway accepts.
        document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise ApiFailure.param("", "请求体不是合法的JSON (body is not valid JSON)") from None
    if not isinstance(document, dict):
        raise ApiFailure.param("", "请求体必须是JSON对象 (body must be a JSON object)")
    return document
