"""Small pieces every product module shares: extra validators and answer decoding.

The generic validators live in :mod:`wxpay_async._validation`; what is here is specific to the
product request shapes (media IDs, positive integers, identifiers in paths) or to reading an
answer whose JSON needs a touch before it is structured (decrypted contact fields).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import attrs

from .._converter import structure
from .._errors import UnexpectedResponseError, ValidationError
from .._validation import Validator, count, each, text
from ..trust import RawResponse

__all__ = [
    "answer_document",
    "identifier",
    "media_id",
    "media_ids",
    "positive_int",
    "require",
    "structure_answer",
]

T = TypeVar("T")

#: Media IDs returned by the upload API are usually longer than the 32 characters some request
#: tables print; the response tables (and observed IDs) allow 128 (spec §A2.1, §A4.5).
MEDIA_ID_MAX = 128


def identifier(max_len: int = 32) -> Validator:
    """A non-empty identifier string (mchid, appid, service ID) of at most ``max_len`` chars."""
    return text(1, max_len)


def media_id() -> Validator:
    """One media ID from the image upload API."""
    return text(1, MEDIA_ID_MAX)


def media_ids(min_items: int = 1, max_items: int | None = None) -> Validator:
    """A list of media IDs."""
    counted = count(min_items, max_items)
    items = each(1, MEDIA_ID_MAX)

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        counted(inst, attribute, value)
        items(inst, attribute, value)

    return check


def positive_int(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An integer ≥ 1 (``None`` passes: requiredness is the converter's job)."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(attribute.name, f"must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValidationError(attribute.name, "must be a positive integer")


def require(condition: bool, field: str, rule: str) -> None:
    """Raise :class:`ValidationError` for a cross-field rule that does not hold."""
    if not condition:
        raise ValidationError(field, rule)


def answer_document(raw: RawResponse) -> dict[str, Any]:
    """The JSON object of a verified answer (``{}`` for an empty body)."""
    try:
        document = json.loads(raw.body) if raw.body else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise UnexpectedResponseError(
            f"HTTP {raw.status} answer is not a JSON object "
            f"(Request-ID={raw.headers.get('Request-ID')})"
        )
    return document


def structure_answer(document: dict[str, Any], cls: type[T], raw: RawResponse) -> T:
    """Structure an answer's document; a shape error is the answer's fault, not the caller's."""
    try:
        return structure(document, cls)
    except ValidationError as exc:
        raise UnexpectedResponseError(
            f"unexpected response shape: {exc} (Request-ID={raw.headers.get('Request-ID')})"
        ) from None
