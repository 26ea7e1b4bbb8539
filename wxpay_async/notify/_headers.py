"""Reading notification headers from whatever a web framework hands over."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from .._errors import ValidationError

__all__ = ["HeadersLike", "as_header_mapping", "headers_from_meta", "text_of"]

#: Any mapping (looked up case-insensitively), or ASGI-style ``(name, value)`` pairs.
HeadersLike = Mapping[str, Any] | Mapping[bytes, Any] | Iterable[tuple[str | bytes, str | bytes]]

# WSGI puts these two in the environ without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def text_of(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def headers_from_meta(meta: Mapping[str, Any]) -> dict[str, str]:
    """Headers from a WSGI environ or Django ``request.META`` (``HTTP_WECHATPAY_SIGNATURE``).

    ``HTTP_WECHATPAY_SIGNATURE`` becomes ``Wechatpay-Signature``; non-header entries
    (``wsgi.input``, ``REMOTE_ADDR``, ...) are dropped. Django's ``request.headers`` is already
    a case-insensitive mapping and can be passed to ``parse()`` directly.
    """
    headers: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, (str, bytes)):
            continue
        if key.startswith("HTTP_"):
            name = "-".join(part.capitalize() for part in key[5:].split("_"))
        elif key in _UNPREFIXED:
            name = _UNPREFIXED[key]
        else:
            continue
        headers[name] = text_of(value)
    return headers


_HEADERS_RULE = "must be a mapping or an iterable of (name, value) pairs of str or bytes"


def as_header_mapping(headers: HeadersLike) -> Mapping[Any, Any]:
    """A mapping to look headers up in: ASGI pairs become a ``dict`` (Latin-1), mappings pass.

    Raises ``ValidationError("headers")`` for anything else (``None``, a ``str``, pairs that
    are not two ``str``/``bytes`` items): the caller's mistake, not a forged notification.
    """
    if isinstance(headers, Mapping):
        # As is, whatever its key type: the signature headers are looked up case-insensitively
        # over ``str`` and ``bytes`` names alike (see ``crypto.verify``), without a copy.
        return cast("Mapping[Any, Any]", headers)
    if isinstance(headers, (str, bytes, bytearray)) or not isinstance(headers, Iterable):
        raise ValidationError("headers", f"{_HEADERS_RULE}, got {type(headers).__name__}")
    out: dict[str, Any] = {}
    for pair in headers:
        try:
            if isinstance(pair, (str, bytes)):  # "ab" would unpack into a header "a: b"
                raise TypeError
            key, value = pair
        except (TypeError, ValueError):
            raise ValidationError("headers", _HEADERS_RULE) from None
        if not isinstance(key, (str, bytes)) or not isinstance(value, (str, bytes)):
            raise ValidationError("headers", _HEADERS_RULE)
        out.setdefault(text_of(key), text_of(value))  # first occurrence wins, as with multidicts
    return out
