"""Which model a decrypted ``resource`` becomes, by ``event_type`` (exact or prefix).

The product modules that define the typed resources import the client and the converter; the
notification layer must stay importable on its own (a webhook process needs no client), so the
built-in entries are *references* resolved on first use.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

import attrs

from .._converter import converter
from .._errors import MalformedNotificationError, ValidationError

__all__ = ["DEFAULT_MODELS", "EventRegistry", "ResourceModel"]

log = logging.getLogger("wxpay_async.notify")

#: An attrs model (structured through the library's converter) or any callable that builds
#: the resource from the decrypted JSON object.
ResourceModel = type[Any] | Callable[[dict[str, Any]], Any]

_MAX_CACHED_EVENT_TYPES = 256

_PAYSCORE = "wxpay_async.products.payscore_permissions:PermissionNotification"
_H5 = "wxpay_async.products.h5_permission:H5ApplicationNotification"

#: The built-in event types (spec §A2.4, §A3.4). ``*`` at the end makes an entry a prefix:
#: WeChat documents only ``APPLYMENT_STATE.APPROVED`` but may send other review outcomes.
DEFAULT_MODELS: dict[str, str] = {
    "PAYSCORE.USER_OPEN_SERVICE": _PAYSCORE,
    "PAYSCORE.USER_CLOSE_SERVICE": _PAYSCORE,
    "APPLYMENT_STATE.*": _H5,
}


@attrs.define
class _Lazy:
    """``"package.module:Name"``, imported when first needed."""

    ref: str
    failed: bool = False
    model: ResourceModel | None = None

    def resolve(self) -> ResourceModel | None:
        if self.model is not None or self.failed:
            return self.model
        module_name, _, attr = self.ref.partition(":")
        try:
            model: ResourceModel = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            # Degrade to the plain mapping rather than refusing authentic notifications.
            log.warning("resource model %s unavailable (%s); delivering a dict", self.ref, exc)
            self.failed = True
            return None
        self.model = model
        return model


_Entry = ResourceModel | _Lazy


class EventRegistry:
    """``event_type`` → resource model; exact names win over prefixes, longer prefixes first."""

    def __init__(self, entries: dict[str, _Entry] | None = None) -> None:
        self._exact: dict[str, _Entry] = {}
        self._prefixes: dict[str, _Entry] = {}
        # event_type → what builds its resource (None: the mapping as is), resolved once.
        self._builders: dict[str, Callable[[dict[str, Any]], Any] | None] = {}
        for pattern, entry in (entries or {}).items():
            self._put(pattern, entry)

    @classmethod
    def default(cls) -> EventRegistry:
        """A registry holding the built-in event types (each verifier gets its own copy)."""
        return cls({pattern: _Lazy(ref) for pattern, ref in DEFAULT_MODELS.items()})

    def register(self, event_type: str, model: ResourceModel) -> None:
        """Map ``event_type`` (or a ``PREFIX.*`` pattern) to ``model``, replacing any entry."""
        if not callable(model):
            raise ValidationError("model", "must be an attrs class or a callable")
        self._put(event_type, model)

    def _put(self, pattern: str, entry: _Entry) -> None:
        if not isinstance(pattern, str) or not pattern.strip("*"):
            raise ValidationError("event_type", "must be a non-empty event type or PREFIX.*")
        if "*" in pattern[:-1]:
            raise ValidationError("event_type", "'*' is only allowed at the end (a prefix)")
        if pattern.endswith("*"):
            self._prefixes[pattern[:-1]] = entry
        else:
            self._exact[pattern] = entry
        self._builders.clear()

    def model_for(self, event_type: str) -> ResourceModel | None:
        """The model for ``event_type``, or ``None`` when the resource stays a mapping."""
        entry = self._exact.get(event_type)
        if entry is None:
            matches = [p for p in self._prefixes if event_type.startswith(p)]
            if matches:
                entry = self._prefixes[max(matches, key=len)]
        if isinstance(entry, _Lazy):
            return entry.resolve()
        return entry

    def build(self, event_type: str, data: dict[str, Any], *, strict: bool = False) -> Any:
        """The resource for ``event_type``: its model, or ``data`` itself when none is known.

        When ``data`` does not fit the model, ``strict`` raises
        :class:`MalformedNotificationError`; otherwise ``data`` is delivered as is, with a
        warning (the notification is authentic, and WeChat documents several resource fields
        only loosely). Either way only the field path is reported: a rule's text may quote a
        decrypted value, which must not reach logs.
        """
        try:
            builder = self._builders[event_type]
        except KeyError:
            builder = self._builder_for(event_type)
        if builder is None:
            return data
        try:
            return builder(data)
        except ValidationError as exc:
            problem = f"field {exc.field or '(object)'!r}"
        except (TypeError, ValueError, KeyError) as exc:
            problem = type(exc).__name__
        model = self.model_for(event_type)
        name = getattr(model, "__name__", type(model).__name__)
        text = f"{event_type} resource does not fit {name}: {problem}"
        if strict:
            raise MalformedNotificationError(text)
        log.warning("%s; delivering the decrypted mapping", text)
        return data

    def _builder_for(self, event_type: str) -> Callable[[dict[str, Any]], Any] | None:
        model = self.model_for(event_type)
        builder: Callable[[dict[str, Any]], Any] | None = model
        if isinstance(model, type) and attrs.has(model):
            # Through the converter on each call: a hook registered later still applies.
            builder = functools.partial(converter.structure, cl=model)
        if len(self._builders) < _MAX_CACHED_EVENT_TYPES:  # event types are few; stay bounded
            self._builders[event_type] = builder
        return builder

    def copy(self) -> EventRegistry:
        clone = EventRegistry()
        clone._exact = dict(self._exact)
        clone._prefixes = dict(self._prefixes)
        return clone
