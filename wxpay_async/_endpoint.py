"""Endpoints are data: method, host, path, retry safety, idempotency and encrypted fields."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import attrs

from ._config import HostName
from ._errors import ValidationError
from .crypto import Padding
from .crypto.fields import padding_of

__all__ = ["IDEMPOTENCY_KEY_RULE", "Endpoint", "check_idempotency_key", "new_idempotency_key"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9]{1,64}")
IDEMPOTENCY_KEY_RULE = "must be 1-64 letters and digits (uuid4().hex fits; dashes do not)"


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: 32 lower-case hex characters (128 random bits).

    The same shape as ``uuid4().hex``, drawn straight from ``os.urandom``: one key per
    onboarding, and ``uuid.UUID`` costs ~2 µs of Python to build one.
    """
    return os.urandom(16).hex()


def check_idempotency_key(key: str, field: str = "idempotency_key") -> str:
    """Return ``key`` if it is 1-64 ASCII letters/digits, else raise :class:`ValidationError`."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(field, IDEMPOTENCY_KEY_RULE)
    return key


@attrs.frozen(kw_only=True)
class Endpoint:
    """One API operation, described once.

    ``retry_safe`` says whether a request that may have reached WeChat can be sent again: true for
    reads, for writes carrying an Idempotency-Key, and for writes with a unique business key.
    A request that provably never left (connection refused) is always retried.
    """

    name: str
    method: str
    host: HostName
    path: str
    #: ``None``: derive from the method (GET/PUT/DELETE are safe, POST/PATCH are not).
    retry_safe: bool | None = None
    idempotency_key: bool = False
    #: Dotted paths (``contact.name``) of request fields encrypted with the platform key.
    encrypted_fields: tuple[str, ...] = ()
    padding: Padding = attrs.field(default=Padding.OAEP, converter=padding_of)
    #: ``"v3"``: signed request, verified response, ``{code, message}`` errors.
    #: ``"weixin"``: api.weixin.qq.com, access token, ``{errcode, errmsg}`` answers.
    protocol: Literal["v3", "weixin"] = "v3"
    #: False only where the caller verifies the answer itself (the certificate download).
    verify_response: bool = True

    #: ``path`` split at its placeholders: literals at even positions, names at odd ones.
    _segments: tuple[str, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_segments", tuple(_PLACEHOLDER.split(self.path)))

    @property
    def safe_to_retry(self) -> bool:
        if self.retry_safe is not None:
            return self.retry_safe
        return self.idempotency_key or self.method in _SAFE_METHODS

    def render_path(self, params: Mapping[str, Any]) -> str:
        """The path with each ``{name}`` percent-encoded (nothing left to re-encode later)."""
        segments = self._segments
        if len(segments) == 1:
            return self.path
        parts = [segments[0]]
        for i in range(1, len(segments), 2):
            name = segments[i]
            if name not in params:
                raise ValidationError(name, "is required (path parameter)")
            value = params[name]
            # IDs are nearly always ASCII letters and digits: nothing to check or escape.
            if type(value) is not str or not (value.isascii() and value.isalnum()):
                value = _path_value(name, value)
            parts.append(value)
            parts.append(segments[i + 1])
        return "".join(parts)


def _path_value(name: str, value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
        raise ValidationError(name, "must be a non-empty string or integer")
    if value in (".", ".."):
        # Unreserved characters, so quoting leaves them: a server or proxy that normalizes
        # the path would then address another resource.
        raise ValidationError(name, "must not be '.' or '..'")
    return quote(str(value), safe="")
