"""Regressions from the notification review: handlers, option values, timestamps, leases,
reprs and argument validation, each through the public API."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from wxpay_async import SignatureVerificationError, TimestampOutOfWindowError, ValidationError
from wxpay_async.notify import (
    EventRegistry,
    Inbox,
    MemoryInbox,
    Notification,
    NotificationVerifier,
    Outcome,
    RedisInbox,
    SqliteInbox,
    aiohttp_handler,
    handle_notification,
)
from wxpay_async.trust import PublicKeyTrust

from ._factory import APIV3_KEY, PERMISSION_RESOURCE, NotificationFactory, note
from ._stores import make_inbox


def failure(payload: bytes) -> str:
    document = json.loads(payload)
    assert document["code"] == "FAIL"
    message: str = document["message"]
    return message


# -- 1. handlers must be async ------------------------------------------------------------

runs: list[str] = []


def sync_handler(notification: Notification) -> None:  # forgot ``async``
    runs.append(notification.id)


async def async_handler(notification: Notification) -> None:
    runs.append(notification.id)


class SyncCall:
    def __call__(self, notification: Notification) -> None:
        runs.append(notification.id)


class AsyncCall:
    async def __call__(self, notification: Notification) -> None:
        runs.append(notification.id)

    async def method(self, notification: Notification) -> None:
        runs.append(notification.id)


async def async_generator(notification: Notification) -> Any:
    runs.append(notification.id)
    yield


REFUSED_HANDLERS: dict[str, Any] = {
    "plain function": sync_handler,
    "lambda": lambda n: runs.append(n.id),
    "sync __call__": SyncCall(),
    "partial of a plain function": functools.partial(sync_handler),
    "sync bound method": SyncCall().__call__,
    "a class": AsyncCall,
    "async generator": async_generator,
    "str": "on_event",
    "None": None,
}


@pytest.fixture(autouse=True)
def _clear_runs() -> None:
    runs.clear()


@pytest.mark.parametrize("bad", REFUSED_HANDLERS.values(), ids=REFUSED_HANDLERS.keys())
async def test_non_async_handlers_are_refused_before_anything_runs(
    bad: Any, verifier: NotificationVerifier, factory: NotificationFactory, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as info:
        aiohttp_handler(verifier, bad)
    assert info.value.field == "handler"
    headers, body = factory.make(notification_id="EV-1")
    with pytest.raises(ValidationError) as info:
        await handle_notification(verifier, bad, headers, body, inbox=MemoryInbox())
    assert info.value.field == "handler"
    async with SqliteInbox(tmp_path / "i.db") as sqlite:
        for inbox in (MemoryInbox(), sqlite):
            with pytest.raises(ValidationError) as info:
                await inbox.process(note(), bad)
            assert info.value.field == "handler"
            # Nothing was claimed: a correct handler still runs for this ID.
            assert await inbox.process(note(), async_handler) is Outcome.PROCESSED
    assert runs == ["EV-1", "EV-1"]  # only the two correct runs


ACCEPTED_HANDLERS: dict[str, Any] = {
    "async def": async_handler,
    "bound async method": AsyncCall().method,
    "async __call__": AsyncCall(),
    "partial": functools.partial(async_handler),
    "partial of a partial": functools.partial(functools.partial(async_handler)),
    "partial of async __call__": functools.partial(AsyncCall()),
    "AsyncMock": AsyncMock(side_effect=async_handler),
}


@pytest.mark.parametrize("good", ACCEPTED_HANDLERS.values(), ids=ACCEPTED_HANDLERS.keys())
async def test_every_documented_async_handler_shape_is_accepted(
    good: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    aiohttp_handler(verifier, good)
    headers, body = factory.make(notification_id="EV-7")
    inbox = MemoryInbox()
    assert await handle_notification(verifier, good, headers, body, inbox=inbox) == (204, b"")
    assert await handle_notification(verifier, good, headers, body, inbox=inbox) == (204, b"")
    assert runs == ["EV-7"]


async def _template(notification: Notification) -> None:
    """Only its code object is used: it carries the coroutine flag."""


class Pretender:
    """Passes every static check for "async" (as a mock can), yet returns ``None``."""

    __name__ = "pretender"
    __code__ = _template.__code__
    __defaults__ = None
    __kwdefaults__ = None
    __annotations__: dict[str, Any] = {}  # read by inspect, never mutated

    def __call__(self, notification: Notification) -> None:
        runs.append(notification.id)


async def test_a_handler_returning_a_non_awaitable_is_recorded_done_not_rerun(
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wxpay_async.notify import HandlerNotAwaitableError  # new: imported here, not above

    pretender: Any = Pretender()
    inbox = MemoryInbox()
    with pytest.raises(HandlerNotAwaitableError) as info:  # a ValidationError
        await inbox.process(note("EV-A"), pretender)
    assert isinstance(info.value, ValidationError) and info.value.field == "handler"
    assert await inbox.process(note("EV-A"), pretender) is Outcome.DUPLICATE

    headers, body = factory.make(notification_id="EV-B")
    status, payload = await handle_notification(verifier, pretender, headers, body, inbox=inbox)
    assert (status, failure(payload)) == (500, "handler failed")
    for _ in range(3):  # WeChat's retries: duplicates now, the side effect does not repeat
        assert await handle_notification(verifier, pretender, headers, body, inbox=inbox) == (
            204,
            b"",
        )
    assert runs == ["EV-A", "EV-B"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("EV-A" in m for m in errors) and any("EV-B" in m for m in errors)


async def test_only_the_inbox_whose_handler_returned_a_non_awaitable_records_it_done() -> None:
    inner, outer = MemoryInbox(), MemoryInbox()

    async def nested(notification: Notification) -> None:
        await inner.process(note("EV-INNER"), Pretender())

    with pytest.raises(ValidationError):
        await outer.process(note("EV-OUTER"), nested)
    # The outer handler failed (it raised): its claim was released, not recorded done.
    assert await outer.process(note("EV-OUTER"), async_handler) is Outcome.PROCESSED
    assert await inner.process(note("EV-INNER"), async_handler) is Outcome.DUPLICATE
    assert runs == ["EV-INNER", "EV-OUTER"]


# -- 2. finite option values --------------------------------------------------------------

NOT_FINITE = [math.nan, math.inf, -math.inf, 10**400]


@pytest.mark.parametrize("value", NOT_FINITE, ids=["nan", "inf", "-inf", "huge-int"])
def test_non_finite_options_are_refused(value: Any, trust: PublicKeyTrust, tmp_path: Path) -> None:
    builders: list[tuple[str, Callable[[], object]]] = [
        ("window", lambda: NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, window=value)),
        ("wait", lambda: MemoryInbox(wait=value)),
        ("retention", lambda: MemoryInbox(retention=value)),
        ("busy_timeout", lambda: SqliteInbox(tmp_path / "i.db", busy_timeout=value)),
    ]
    for option in ("lease", "wait", "retention", "poll_interval"):
        options = {option: value}
        builders.append((option, functools.partial(SqliteInbox, tmp_path / "i.db", **options)))
        builders.append((option, functools.partial(RedisInbox, "redis://127.0.0.1:1/0", **options)))
    for field, build in builders:
        with pytest.raises(ValidationError) as info:
            build()
        assert info.value.field == field


# -- 3. the timestamp header --------------------------------------------------------------

MALFORMED_TIMESTAMPS = [
    "9" * 400,
    "-" + "9" * 400,
    "9" * 5000,
    "+1700000000",
    "-1",
    "1_700_000_000",
    "1700000000.0",
    "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
    "1" * 13,
]


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS, ids=range(len(MALFORMED_TIMESTAMPS)))
async def test_malformed_timestamps_are_signature_failures(
    timestamp: str, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    headers["Wechatpay-Timestamp"] = timestamp
    with pytest.raises(SignatureVerificationError) as info:
        await verifier.parse(headers, body)
    assert not isinstance(info.value, TimestampOutOfWindowError)
    assert "ASCII digits" in str(info.value)


async def test_a_huge_timestamp_is_answered_401_json_over_http(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    app = web.Application()
    app.router.add_post("/notify", aiohttp_handler(verifier, async_handler))
    async with TestClient(TestServer(app)) as client:
        for timestamp in ("9" * 400, "-" + "9" * 400):
            headers, body = factory.make()
            headers["Wechatpay-Timestamp"] = timestamp
            async with client.post("/notify", data=body, headers=headers) as response:
                assert response.status == 401
                assert response.content_type == "application/json"
                assert failure(await response.read()) == "signature verification failed"
    assert runs == []


class ExplodingTrust:
    async def verification_key(self, serial: str) -> RSAPublicKey:
        quoted = "-".join(["DECRYPTED", "SECRET", "VALUE"])  # a runtime value, not source text
        raise RuntimeError(f"bug quoting {quoted}")


async def test_an_unexpected_error_while_verifying_is_answered_500_json(
    factory: NotificationFactory, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=ExplodingTrust(), clock=lambda: float(factory.now)
    )
    headers, body = factory.make()
    status, payload = await handle_notification(
        verifier, async_handler, headers, body, inbox=MemoryInbox()
    )
    assert (status, failure(payload)) == (500, "internal error")
    assert runs == []
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = record.getMessage()
    assert "RuntimeError" in text and "verification_key" in text  # the stack is there
    assert headers["Request-ID"] in text
    assert "DECRYPTED-SECRET-VALUE" not in caplog.text  # the message is not
    assert APIV3_KEY.decode() not in caplog.text


# -- 4. a lapsed lease is reported --------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_lapsed_lease_is_logged_as_an_error_naming_the_id(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    where: Any = request.getfixturevalue("redis_url") if kind == "redis" else tmp_path
    options: dict[str, Any] = {"lease": 0.3, "wait": 0}
    if kind == "redis":
        options["prefix"] = f"test:{uuid.uuid4().hex}:"
    ran: list[str] = []

    def other_server() -> None:
        # Another process: its own loop, same store, after this holder's lease ran out.
        async def deliver() -> Outcome:
            async def handler(notification: Notification) -> None:
                ran.append("B")

            async with make_inbox(kind, where, **options) as inbox:
                return await inbox.process(note("EV-LAPSE"), handler)

        time.sleep(0.45)
        assert asyncio.run(deliver()) is Outcome.PROCESSED

    async def blocking_handler(notification: Notification) -> None:
        ran.append("A")
        # Blocks this loop (no heartbeat) while the other server takes the claim and succeeds.
        thread = threading.Thread(target=other_server)
        thread.start()
        thread.join()

    inbox: Inbox
    async with make_inbox(kind, where, **options) as inbox:
        assert await inbox.process(note("EV-OK"), async_handler) is Outcome.PROCESSED
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no false alarm
        assert await inbox.process(note("EV-LAPSE"), blocking_handler) is Outcome.PROCESSED
    assert ran == ["A", "B"]  # the documented limit: both ran
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "EV-LAPSE" in errors[0] and "lapsed" in errors[0]
    assert not re.search(r"[0-9a-f]{32}", errors[0])  # no claim token


# -- 5. decrypted contents stay out of reprs ----------------------------------------------


async def test_personal_identifiers_and_extra_keys_are_not_in_reprs(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    for resource in (
        {**PERMISSION_RESOURCE, "nickname": "SECRET-NICK"},
        {**PERMISSION_RESOURCE, "openid": None, "sub_openid": "SUB-OPENID-SECRET"},
    ):
        headers, body = factory.make({k: v for k, v in resource.items() if v is not None})
        notification = await verifier.parse(headers, body)
        model = notification.resource
        shown = repr(model) + repr(notification)
        for value in ("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "SUB-OPENID-SECRET", "SECRET-NICK"):
            assert value not in shown
        assert "authorization_code=" in repr(model)  # the rest is still shown
        assert (model.openid or model.sub_openid) in (
            PERMISSION_RESOURCE["openid"],
            "SUB-OPENID-SECRET",
        )
    assert model.sub_openid == "SUB-OPENID-SECRET"

    h5 = {"applyment_id": 2000002124775691, "applyment_state": "APPROVED", "legal": "ID-1234"}
    headers, body = factory.make(h5, event_type="APPLYMENT_STATE.APPROVED")
    model = (await verifier.parse(headers, body)).resource
    assert model.extra == {"legal": "ID-1234"}
    assert "ID-1234" not in repr(model) and "applyment_id=2000002124775691" in repr(model)


# -- 6. the caller's mistakes raise ValidationError naming the argument -------------------


def test_bad_constructor_arguments_name_their_field(trust: PublicKeyTrust, tmp_path: Path) -> None:
    import redis

    text: Any = "x"
    number: Any = 123
    verifier = functools.partial(NotificationVerifier, apiv3_key=APIV3_KEY, trust=trust)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("busy_timeout", lambda: SqliteInbox(tmp_path / "a.db", busy_timeout=text)),
        ("busy_timeout", lambda: SqliteInbox(tmp_path / "a.db", busy_timeout=-1)),
        ("clock", lambda: SqliteInbox(tmp_path / "a.db", clock=text)),
        ("clock", lambda: MemoryInbox(clock=text)),
        ("clock", lambda: verifier(clock=text)),
        ("registry", lambda: verifier(registry=text)),
        ("url_or_client", lambda: RedisInbox(number)),
        ("url_or_client", lambda: RedisInbox("localhost:6379")),
        ("url_or_client", lambda: RedisInbox(sync_client)),
    ]
    sync_client: Any = redis.Redis()  # the synchronous client: its commands are not coroutines
    for field, build in cases:
        with pytest.raises(ValidationError) as info:
            build()
        assert info.value.field == field, field
    empty = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, registry=EventRegistry())
    assert empty.registry.model_for("PAYSCORE.USER_OPEN_SERVICE") is None


async def test_bad_verifier_or_inbox_is_refused(verifier: NotificationVerifier) -> None:
    nothing: Any = None
    key: Any = APIV3_KEY
    text: Any = "x"
    calls: tuple[tuple[str, Callable[[], object]], ...] = (
        ("verifier", lambda: aiohttp_handler(nothing, async_handler)),
        ("verifier", lambda: aiohttp_handler(key, async_handler)),
        ("inbox", lambda: aiohttp_handler(verifier, async_handler, inbox=text)),
    )
    for field, call in calls:
        with pytest.raises(ValidationError) as info:
            call()
        assert info.value.field == field
    with pytest.raises(ValidationError) as info:
        await handle_notification(verifier, async_handler, {}, b"", inbox=text)
    assert info.value.field == "inbox"


BAD_HEADERS: list[Any] = [None, "Wechatpay-Timestamp: 1", b"raw", 42, [("a", "b", "c")], ["ab"]]


@pytest.mark.parametrize("bad", BAD_HEADERS, ids=range(len(BAD_HEADERS)))
async def test_unusable_headers_raise_instead_of_answering(
    bad: Any, verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    _, body = factory.make()
    with pytest.raises(ValidationError) as info:
        await verifier.parse(bad, body)
    assert info.value.field == "headers"
    with pytest.raises(ValidationError) as info:
        await handle_notification(verifier, async_handler, bad, body, inbox=MemoryInbox())
    assert info.value.field == "headers"


async def test_a_text_body_raises_instead_of_answering_503(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    text_body: Any = body.decode()
    with pytest.raises(ValidationError) as info:
        await handle_notification(
            verifier,
            async_handler,
            headers,
            text_body,
            inbox=MemoryInbox(),
        )
    assert info.value.field == "body"
    assert runs == []
    # The bytes, and ASGI pairs, still work.
    pairs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    assert await handle_notification(verifier, async_handler, pairs, body, inbox=MemoryInbox()) == (
        204,
        b"",
    )
