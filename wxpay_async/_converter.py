"""The one cattrs converter every model goes through.

Conventions it enforces:

* attrs models use the API's wire names as attribute names;
* ``None`` is never sent: optional fields left at ``None`` are omitted on the wire;
* a model with an ``extra`` field (response models) keeps unknown keys there instead of failing;
  a model without one (request models) refuses unknown keys, so a typo is an error, not silence;
* structuring errors become :class:`ValidationError` with the full field path
  (``contact.email``, ``domains[2]``);
* strings are not coerced: ``123`` is not a valid ``str``;
* enums are :class:`enum.StrEnum`; a field typed ``SomeEnum | str`` keeps unknown values
  (response states that WeChat may extend);
* datetimes are RFC 3339 (with or without milliseconds); ``CompactTime`` is PayScore's
  ``yyyyMMddHHmmss`` (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import linecache
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NewType, TypeVar

import attrs
import cattrs

from ._errors import ValidationError

__all__ = [
    "CHINA_TZ",
    "CompactTime",
    "converter",
    "dumps",
    "format_rfc3339",
    "parse_compact_time",
    "parse_rfc3339",
    "structure",
    "unstructure",
]

T = TypeVar("T")

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
#: PayScore's ``yyyyMMddHHmmss`` timestamps (``openorclose_time``), read as Beijing time.
CompactTime = NewType("CompactTime", dt.datetime)

converter = cattrs.Converter()


def parse_rfc3339(value: str) -> dt.datetime:
    """``2015-05-20T13:29:35+08:00`` or ``2015-05-20T13:29:35.120+08:00`` (or ``Z``)."""
    if not isinstance(value, str):
        raise ValidationError("", f"must be an RFC 3339 string, got {type(value).__name__}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("", f"must be an RFC 3339 date-time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ValidationError("", f"must carry a UTC offset, got {value!r}")
    return parsed


def format_rfc3339(value: dt.datetime) -> str:
    """RFC 3339 with seconds precision and an explicit offset (Beijing time if naive)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA_TZ)
    return value.isoformat(timespec="seconds")


def parse_compact_time(value: str) -> dt.datetime:
    """``20180225112233`` → 2018-02-25 11:22:33+08:00."""
    if not isinstance(value, str) or len(value) != 14 or not (value.isascii() and value.isdigit()):
        raise ValidationError("", f"must be yyyyMMddHHmmss, got {value!r}")
    try:
        # Slicing, not strptime: strptime was a third of the cost of a notification resource.
        # (Not fromisoformat either: from Python 3.14 it reads hour 24 as the next midnight.)
        return dt.datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            tzinfo=CHINA_TZ,
        )
    except ValueError:
        raise ValidationError("", f"is not a valid yyyyMMddHHmmss time: {value!r}") from None


def _strict(kind: type[Any], label: str) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValidationError("", f"must be {label}, got {type(value).__name__}")
        return value

    return hook


# Class hooks dispatch on the MRO, so the StrEnum hook below wins over ``str`` for enums.
_STR_HOOK = _strict(str, "a string")
converter.register_structure_hook(str, _STR_HOOK)
converter.register_structure_hook(int, _strict(int, "an integer"))
# A value the spec leaves unconfirmed as number or text (the cloud-base list's states).
converter.register_structure_hook(int | str, _strict((int, str), "an integer or a string"))  # type: ignore[arg-type]
converter.register_structure_hook(bool, _strict(bool, "a boolean"))
converter.register_structure_hook(dt.datetime, lambda v, _t: parse_rfc3339(v))
converter.register_unstructure_hook(dt.datetime, format_rfc3339)
converter.register_structure_hook(CompactTime, lambda v, _t: CompactTime(parse_compact_time(v)))


def format_compact_time(value: dt.datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time (a naive value is taken as Beijing time already)."""
    value = value.replace(tzinfo=CHINA_TZ) if value.tzinfo is None else value.astimezone(CHINA_TZ)
    return value.strftime("%Y%m%d%H%M%S")


converter.register_unstructure_hook(CompactTime, format_compact_time)
converter.register_structure_hook(
    float,
    lambda v, _t: float(_strict((int, float), "a number")(v, _t)),  # type: ignore[arg-type]
)


def _is_strenum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.StrEnum)


def _structure_enum(value: Any, tp: type[enum.StrEnum]) -> enum.StrEnum:
    # A plain string finds its member in the value map: ``tp(value)`` costs ~90 bytecodes.
    member = tp._value2member_map_.get(value) if type(value) is str else None
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        return tp(value)
    except ValueError:
        allowed = ", ".join(m.value for m in tp)
        raise ValidationError("", f"must be one of {allowed} (got {value!r})") from None


converter.register_structure_hook(enum.StrEnum, _structure_enum)
converter.register_unstructure_hook_func(_is_strenum, lambda v: v.value)


@functools.lru_cache(maxsize=512)
def _union_args(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return ()


def _is_lenient_enum(tp: Any) -> bool:
    args = [a for a in _union_args(tp) if a is not type(None)]
    return len(args) == 2 and str in args and any(_is_strenum(a) for a in args)


def _lenient_enum_hook(tp: Any) -> Callable[[Any, Any], Any]:
    enum_type = next(a for a in _union_args(tp) if _is_strenum(a))
    known = {member.value: member for member in enum_type}

    def structure_lenient_enum(value: Any, _type: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("", f"must be a string, got {type(value).__name__}")
        # A state WeChat added after this release is kept as text, not refused.
        return known.get(value, value)

    return structure_lenient_enum


converter.register_structure_hook_factory(_is_lenient_enum, _lenient_enum_hook)


def _is_optional(tp: Any) -> bool:
    args = _union_args(tp)
    return len(args) == 2 and type(None) in args and not _is_lenient_enum(tp)


def _structure_optional(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    inner = next(a for a in _union_args(tp) if a is not type(None))
    return converter.structure(value, inner)


converter.register_structure_hook_func(_is_optional, _structure_optional)


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) in (list, tuple) and (
        typing.get_origin(tp) is list or typing.get_args(tp)[-1:] == (Ellipsis,)
    )


def _structure_list(value: Any, tp: Any) -> Any:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValidationError("", f"must be a list, got {type(value).__name__}")
    item_type = typing.get_args(tp)[0]
    items = []
    for i, item in enumerate(value):
        try:
            items.append(converter.structure(item, item_type))
        except ValidationError as exc:
            raise exc.prefixed(f"[{i}]") from None
    return tuple(items) if typing.get_origin(tp) is tuple else items


converter.register_structure_hook_func(_is_list, _structure_list)


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping)


def _structure_mapping(value: Any, _tp: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValidationError("", f"must be an object, got {type(value).__name__}")
    return dict(value)


converter.register_structure_hook_func(_is_mapping, _structure_mapping)
converter.register_structure_hook(typing.Any, lambda v, _t: v)


def _without_none(tp: Any) -> Any:
    args = _union_args(tp)
    if type(None) in args and not _is_lenient_enum(tp):
        rest = tuple(a for a in args if a is not type(None))
        return rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
    return tp


def _attrs_structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
    """A structure function written for ``cls``: one straight block per field.

    Every field's hook is looked up once, here (dispatching per value costs more than the
    structuring itself), and the function is generated as source, the way attrs writes
    ``__init__``: no per-field loop, tuple unpacking or flag tests at run time. ``None`` is
    handled inline, so ``Optional[X]`` structures as ``X``; a plain ``str`` value for a ``str``
    field is taken as is.
    """
    hints = typing.get_type_hints(cls)
    fields = [f for f in attrs.fields(cls) if f.init]
    keeps_extra = any(f.name == "extra" for f in fields)
    namespace: dict[str, Any] = {
        "cls": cls,
        "Mapping": Mapping,
        "ValidationError": ValidationError,
        "check_model": check_model,
        "known": frozenset(f.name for f in fields if f.name != "extra"),
    }
    lines = [
        "def structure_model(data, _type):",
        "    if type(data) is not dict:",  # the JSON decoder's and most callers' type
        "        if isinstance(data, cls):",
        "            check_model(data)",
        "            return data",
        "        if not isinstance(data, Mapping):",
        "            raise ValidationError('', f'must be an object (a mapping or '"
        "f'{cls.__name__}), got {type(data).__name__}')",
        "    kwargs = {}",
    ]
    for i, f in enumerate(fields):
        if f.name == "extra":
            continue
        field_type = _without_none(hints[f.name])
        hook = converter.get_structure_hook(field_type)
        namespace[f"hook_{i}"], namespace[f"type_{i}"] = hook, field_type
        name, key = repr(f.name), repr(f.alias or f.name)
        lines += [f"    value = data.get({name})", "    if value is None:"]
        if f.default is attrs.NOTHING:
            lines.append(f"        raise ValidationError({name}, 'is required')")
        else:
            lines.append("        pass")
        if field_type is str and hook is _STR_HOOK:
            lines += ["    elif type(value) is str:", f"        kwargs[{key}] = value"]
        lines += [
            "    else:",
            "        try:",
            f"            kwargs[{key}] = hook_{i}(value, type_{i})",
            "        except ValidationError as exc:",
            f"            raise exc.prefixed({name}) from None",
        ]
    lines += [
        "    unknown = {}",
        "    if len(data) > len(kwargs):",  # otherwise every key was a known field
        "        unknown = {k: v for k, v in data.items() if k not in known}",
    ]
    if keeps_extra:
        lines.append("    kwargs['extra'] = unknown")
    else:
        lines += [
            "    if unknown:",
            "        raise ValidationError(",
            "            str(min(unknown, key=str)), f'is not a field of {cls.__name__}'",
            "        )",
        ]
    lines.append("    return cls(**kwargs)")
    structure_model: Callable[[Any, Any], Any] = _compile(cls, "structure", lines, namespace)
    return structure_model


_JSON_SCALARS = frozenset({str, int, float, bool})


def _attrs_unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
    """An unstructure function written for ``cls``, generated like ``_attrs_structure_factory``.

    Plain JSON scalars (most fields) are their own wire form and are copied without dispatch;
    a value of exactly its field's class (a nested model, an enum) goes to that class's hook,
    looked up once here (registering a hook clears cattrs' cache, so this function is then
    generated again); anything else is dispatched by cattrs. ``None`` fields are left out;
    ``extra`` keys never override a field.
    """
    hints = typing.get_type_hints(cls)
    namespace: dict[str, Any] = {"converter": converter, "scalars": _JSON_SCALARS}
    lines = ["def unstructure_model(obj):", "    out = {}"]
    for i, f in enumerate(attrs.fields(cls)):
        if f.name == "extra":
            continue
        declared = namespace[f"declared_{i}"] = _declared(hints[f.name])
        field_type = _without_none(hints[f.name])
        dispatched = f"converter.unstructure(value, unstructure_as=declared_{i})"
        lines += [f"    value = obj.{f.name}", "    if value is not None:"]
        if (
            declared is None
            and isinstance(field_type, type)
            and field_type not in _JSON_SCALARS
            and field_type is not cls  # its own hook is being written: dispatch at run time
        ):
            namespace[f"type_{i}"] = field_type
            namespace[f"hook_{i}"] = converter.get_unstructure_hook(field_type)
            lines += [
                "        if type(value) in scalars:",
                f"            out[{f.name!r}] = value",
                f"        elif type(value) is type_{i}:",
                f"            out[{f.name!r}] = hook_{i}(value)",
                "        else:",
                f"            out[{f.name!r}] = {dispatched}",
            ]
        else:
            lines.append(
                f"        out[{f.name!r}] = value if type(value) in scalars else {dispatched}"
            )
    if any(f.name == "extra" for f in attrs.fields(cls)):
        lines += [
            "    if obj.extra:",
            "        for key, value in obj.extra.items():",
            "            out.setdefault(key, value)",
        ]
    lines.append("    return out")
    unstructure_model: Callable[[Any], Any] = _compile(cls, "unstructure", lines, namespace)
    return unstructure_model


def _compile(cls: type[Any], kind: str, lines: list[str], namespace: dict[str, Any]) -> Any:
    """Compile generated ``{kind}_model`` source for ``cls`` and return the function."""
    source = "\n".join(lines) + "\n"
    filename = f"<wxpay_async {kind} {cls.__module__}.{cls.__qualname__}>"
    # Registered with linecache so that tracebacks and debuggers show the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own source
    return namespace[f"{kind}_model"]


def _declared(tp: Any) -> Any:
    """The type to unstructure a field as: NewTypes (``CompactTime``) need their own hook."""
    args = [a for a in _union_args(tp) if a is not type(None)]
    if len(args) == 1:
        tp = args[0]
    return tp if tp is CompactTime else None


converter.register_structure_hook_factory(attrs.has, _attrs_structure_factory)
converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_factory)


def structure(data: Any, cls: type[T]) -> T:
    """Validate and build ``cls`` from a mapping, or check a ``cls`` built directly.

    A model built directly is checked again (:func:`check_model`): its lists may have been
    changed in place since, and its validators let ``None`` pass where the mapping path
    requires a value.
    """
    if isinstance(data, cls):
        if attrs.has(cls):
            check_model(data)
        return data
    return converter.structure(data, cls)


_REQUIRED: dict[type[Any], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _required(cls: type[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``cls``'s required fields, and every field (whose values may hold nested models)."""
    known = _REQUIRED.get(cls)
    if known is None:
        fields = [f for f in attrs.fields(cls) if f.name != "extra"]
        required = tuple(f.name for f in fields if f.init and f.default is attrs.NOTHING)
        known = _REQUIRED[cls] = (required, tuple(f.name for f in fields))
    return known


def check_model(model: Any) -> None:
    """Check a model built directly, at every depth, as if it were built now.

    Its field validators and cross-field rules (``__attrs_post_init__``) run again: frozen
    models hold lists that can be changed in place after they were checked. Then no required
    field may be ``None`` (validators let ``None`` pass; optional fields default to it). Errors
    carry dotted paths like the mapping path's (``business.name``, ``items[2].id``).
    """
    cls = type(model)
    required, names = _required(cls)
    for name in required:
        if getattr(model, name) is None:
            raise ValidationError(name, "is required")
    attrs.validate(model)
    post_init = getattr(cls, "__attrs_post_init__", None)
    if post_init is not None:
        post_init(model)  # rules only; the aliases it fills are filled already
    for name in names:
        value = getattr(model, name)
        try:
            if attrs.has(type(value)):
                check_model(value)
            elif type(value) in (list, tuple):
                for i, item in enumerate(value):
                    if attrs.has(type(item)):
                        try:
                            check_model(item)
                        except ValidationError as exc:
                            raise exc.prefixed(f"[{i}]") from None
        except ValidationError as exc:
            raise exc.prefixed(name) from None


def unstructure(obj: Any) -> Any:
    """Model → plain JSON-ready data (``None`` omitted)."""
    return converter.unstructure(obj)


_DECODER = json.JSONDecoder()
# Set by JSONDecoder.__init__ (the C scanner when available); not in typeshed.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_JSON_WHITESPACE = " \t\n\r"


def loads_utf8(raw: bytes) -> Any:
    """``json.loads`` for a UTF-8 body (what WeChat sends), on the decoder's fast path.

    ``json.loads(bytes)`` sniffs for UTF-16/32 and both entry points run whitespace regexes
    around the C scanner: together ~1 µs per document on the notification and answer paths.
    Raises ``ValueError`` (``UnicodeDecodeError`` or ``JSONDecodeError``) like ``json.loads``.
    """
    text = raw.decode()
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:  # leading whitespace, empty, or not JSON: the general path decides
        return _DECODER.decode(text)
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def one_shot_encoder(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, the same text, without re-reading the encoder's options per call.

    ``JSONEncoder.encode`` runs ~85 bytecodes of Python per call (it looks up every option and
    builds a closure) before CPython's C encoder does the work; this builds that C encoder from
    options read once, with a fresh circular-reference memo per call, so a cycle still raises
    ``ValueError``. It is ``encoder.encode`` itself where that shortcut would not give the same
    text: no C encoder, ``indent``, ``check_circular=False``, or a subclass that overrides
    ``encode`` or ``iterencode``.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    kind = type(encoder)
    if (
        make is None
        or encoder.indent is not None
        or not encoder.check_circular
        or kind.encode is not json.JSONEncoder.encode
        or kind.iterencode is not json.JSONEncoder.iterencode
    ):
        return encoder.encode
    strings = (
        json.encoder.encode_basestring_ascii
        if encoder.ensure_ascii
        else json.encoder.encode_basestring
    )
    options = (
        encoder.default,
        strings,
        None,  # indent
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )

    def encode(data: Any) -> str:
        return "".join(make({}, *options)(data, 0))

    return encode


#: One encoder for every body: ``json.dumps`` with options builds a new one per call.
_ENCODE = one_shot_encoder(json.JSONEncoder(ensure_ascii=False, separators=(",", ":")))


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON bytes: serialized once, signed and sent as is."""
    return _ENCODE(data).encode()
