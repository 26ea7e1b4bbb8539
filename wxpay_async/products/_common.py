"""Small pieces every product module shares: extra validators and answer decoding.

The generic validators live in :mod:`wxpay_async._validation`; what is here is specific to the
product request shapes (media IDs, positive integers, identifiers in paths) or to reading an
answer whose JSON needs a touch before it is structured (decrypted contact fields).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from .._client import answer_document, structure_answer
from .._errors import ValidationError
from .._validation import Validator, count, each, text

__all__ = [
    "answer_document",
    "identifier",
    "instance_of",
    "list_of_text",
    "media_id",
    "media_ids",
    "member_of",
    "positive_int",
    "require",
    "structure_answer",
]


#: Media IDs returned by the upload API are usually longer than the 32 characters some request
#: tables print; the response tables (and observed IDs) allow 128 (spec §A2.1, §A4.5).
MEDIA_ID_MAX = 128


def identifier(max_len: int = 32) -> Validator:
    """A non-empty identifier string (mchid, appid, service ID) of at most ``max_len`` chars."""
    return text(1, max_len)


def media_id() -> Validator:
    """One media ID from the image upload API."""
    return text(1, MEDIA_ID_MAX)


def list_of_text(
    min_items: int = 1,
    max_items: int | None = None,
    *,
    min_len: int = 1,
    max_len: int | None = None,
) -> Validator:
    """A list (or tuple) of ``min_items..max_items`` strings of ``min_len..max_len`` characters.

    A bare string is refused: iterating it would check, and send, its characters.
    """
    counted = count(min_items, max_items)
    items = each(min_len, max_len)

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, (list, tuple)):
            raise ValidationError(attribute.name, f"must be a list, got {type(value).__name__}")
        counted(inst, attribute, value)
        items(inst, attribute, value)

    return check


def media_ids(min_items: int = 1, max_items: int | None = None) -> Validator:
    """A list of media IDs."""
    return list_of_text(min_items, max_items, max_len=MEDIA_ID_MAX)


def member_of(enum_type: type[enum.StrEnum]) -> Validator:
    """A member of ``enum_type`` or its exact value, for models built directly (not structured)."""
    values = frozenset(member.value for member in enum_type)
    allowed = ", ".join(member.value for member in enum_type)

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None or isinstance(value, enum_type):
            return
        if not isinstance(value, str) or value not in values:
            shown = repr(value)[:40]
            raise ValidationError(attribute.name, f"must be one of {allowed} (got {shown})")

    return check


def instance_of(model: type[Any]) -> Validator:
    """A nested model given as an instance (a mapping is structured only by the converter)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, model):
            raise ValidationError(
                attribute.name,
                f"must be a {model.__name__}, got {type(value).__name__} (pass mappings to the "
                "product function, or build the model with wxpay_async.converter)",
            )

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
