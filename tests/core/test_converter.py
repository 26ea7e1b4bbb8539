"""The shared converter: wire names, None omitted, strict requests, lenient responses."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import attrs
import pytest

from wxpay_async import ValidationError, converter
from wxpay_async._converter import CHINA_TZ, CompactTime, dumps, structure, unstructure
from wxpay_async._validation import count, each, https_url, text, utf8_at_most


class Kind(enum.StrEnum):
    A = "A"
    B = "B"


@attrs.frozen(kw_only=True)
class Inner:
    email: str = attrs.field(validator=utf8_at_most(8))
    phone: str | None = attrs.field(default=None, validator=text(1, 4, pattern=r"\+?\d+"))


@attrs.frozen(kw_only=True)
class Request:
    name: str = attrs.field(validator=text(1, 5))
    kind: Kind = Kind.A
    inner: Inner
    tags: list[str] | None = attrs.field(default=None, validator=[count(1, 2), each(1, 3)])
    url: str | None = attrs.field(default=None, validator=https_url(40))
    count: int | None = None


@attrs.frozen(kw_only=True)
class Response:
    state: Kind | str
    at: dt.datetime | None = None
    compact: CompactTime | None = None
    items: tuple[int, ...] = ()
    extra: dict[str, Any] = attrs.field(factory=dict)


def test_round_trip_omits_none_and_uses_wire_names() -> None:
    req = structure({"name": "abc", "inner": {"email": "a@b.c"}, "kind": "B"}, Request)
    assert req.kind is Kind.B
    assert unstructure(req) == {"name": "abc", "kind": "B", "inner": {"email": "a@b.c"}}
    assert dumps(unstructure(req)) == b'{"name":"abc","kind":"B","inner":{"email":"a@b.c"}}'
    assert structure(req, Request) is req


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"inner": {"email": "a"}}, "name", "is required"),
        ({"name": "abc"}, "inner", "is required"),
        ({"name": "abc", "inner": {"email": "a"}, "nmae": 1}, "nmae", "is not a field"),
        ({"name": "abcdef", "inner": {"email": "a"}}, "name", "at most 5"),
        ({"name": "", "inner": {"email": "a"}}, "name", "must not be empty"),
        ({"name": 5, "inner": {"email": "a"}}, "name", "must be a string"),
        ({"name": "a", "kind": "C", "inner": {"email": "a"}}, "kind", "one of A, B"),
        ({"name": "a", "inner": {"email": "ééééé"}}, "inner.email", "at most 8 bytes"),
        ({"name": "a", "inner": {"email": "a", "phone": "x1"}}, "inner.phone", "must match"),
        ({"name": "a", "inner": {"email": "a"}, "tags": []}, "tags", "at least 1"),
        ({"name": "a", "inner": {"email": "a"}, "tags": ["a", "bbbb"]}, "tags[1]", "at most 3"),
        ({"name": "a", "inner": {"email": "a"}, "tags": ["a", 3]}, "tags[1]", "must be a string"),
        ({"name": "a", "inner": {"email": "a"}, "tags": "ab"}, "tags", "must be a list"),
        ({"name": "a", "inner": {"email": "a"}, "url": "http://x.com/n"}, "url", "https://"),
        ({"name": "a", "inner": {"email": "a"}, "url": "https://x.com/n?a=1"}, "url", "query"),
        ({"name": "a", "inner": {"email": "a"}, "count": True}, "count", "integer"),
        ({"name": "a", "inner": "x"}, "inner", "must be an object"),
        ({"name": "a😀", "inner": {"email": "a"}}, "name", "Basic Multilingual Plane"),
    ],
)
def test_validation_errors_name_the_path_and_rule(
    data: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        structure(data, Request)
    assert info.value.field == field
    assert rule in info.value.rule
    assert str(info.value).startswith(f"{field}: ")


def test_responses_keep_unknown_keys_and_unknown_states() -> None:
    resp = structure(
        {
            "state": "NEW_STATE",
            "at": "2015-05-20T13:29:35.120+08:00",
            "compact": "20180225112233",
            "items": [1, 2],
            "later_field": {"x": 1},
        },
        Response,
    )
    assert resp.state == "NEW_STATE"
    assert not isinstance(resp.state, Kind)
    assert resp.at == dt.datetime(2015, 5, 20, 13, 29, 35, 120000, tzinfo=CHINA_TZ)
    assert resp.compact == dt.datetime(2018, 2, 25, 11, 22, 33, tzinfo=CHINA_TZ)
    assert resp.items == (1, 2)
    assert resp.extra == {"later_field": {"x": 1}}
    assert structure({"state": "A"}, Response).state is Kind.A
    out = unstructure(resp)
    assert out["compact"] == "20180225112233"
    assert out["at"] == "2015-05-20T13:29:35+08:00"
    assert out["later_field"] == {"x": 1}


@pytest.mark.parametrize(
    ("value", "rule"),
    [("2015-05-20 13:29", "UTC offset"), ("yesterday", "RFC 3339"), (5, "RFC 3339")],
)
def test_bad_datetimes(value: Any, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        structure({"state": "A", "at": value}, Response)


@pytest.mark.parametrize(
    "value",
    [
        "2018022511223",
        "20181325112233",
        "20180230112233",  # 30 February
        "20180225240000",  # hour 24
        "2018022511223\u0663",  # an Arabic-Indic digit: str.isdigit() and int() accept it
        "\u0662\u0660\u0661\u0668" + "0225112233",
        20180225112233,
    ],
)
def test_bad_compact_times(value: Any) -> None:
    with pytest.raises(ValidationError, match="compact"):
        structure({"state": "A", "compact": value}, Response)


def test_naive_datetimes_are_sent_as_beijing_time() -> None:
    assert converter.unstructure(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05+08:00"


def test_directly_built_models_refuse_a_string_for_a_list() -> None:
    with pytest.raises(ValidationError, match="tags: must be a list"):
        Request(name="a", inner=Inner(email="a"), tags="ab")  # type: ignore[arg-type]
