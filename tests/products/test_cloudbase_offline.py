"""Cloud-base calls against a scripted api.weixin.qq.com: errcodes, token refresh, no leaks."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from wxpay_async import (
    CloudBaseError,
    RetryPolicy,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.products import cloudbase

from .conftest import Recorder
from .seeds import CLOUDBASE_AUTH_REQUEST

SECRET = "TOKEN-SECRET-123"


class Weixin:
    """Answers each request with the next scripted ``(status, body)``; records the queries."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any]] = []
        self.calls: list[tuple[str, str, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            (request.path, request.query.get("access_token", ""), await request.read())
        )
        status, body = self.script.pop(0) if self.script else (200, {"errcode": 0, "errmsg": "ok"})
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def weixin() -> AsyncIterator[tuple[Weixin, str]]:
    fake = Weixin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def token_provider(*tokens: str) -> Callable[[], Any]:
    issued = list(tokens)

    async def provide() -> str:
        return issued.pop(0)

    return provide


@pytest.mark.parametrize(
    ("action", "merchant_code", "field"),
    [
        ("unbind", "1900006511", "action"),
        ("bind", "", "merchant_code"),
        ("bind", "19000x6511", "merchant_code"),
        ("bind", 1900006511, "merchant_code"),
    ],
)
async def test_invalid_arguments_send_nothing(
    quiet_client: tuple[WxPayClient, Recorder], action: Any, merchant_code: Any, field: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await cloudbase.get_wechatpay_auth(client, action, merchant_code)
    assert caught.value.field == field
    assert rec.requests == []


async def test_missing_access_token_is_a_validation_error(
    make_client: Callable[..., WxPayClient],
) -> None:
    async with make_client() as client:
        with pytest.raises(ValidationError) as caught:
            await cloudbase.list_wechatpay_merchants(client)
    assert caught.value.field == "access_token"


async def test_seed_request_and_answer(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    async with make_client(url, access_token=SECRET) as client:
        result = await cloudbase.get_wechatpay_auth(client, **CLOUDBASE_AUTH_REQUEST)
    assert (result.errcode, result.errmsg) == (0, "ok")
    path, token, body = fake.calls[0]
    assert (path, token) == ("/tcb/wxpayopenauth", SECRET)
    assert json.loads(body) == CLOUDBASE_AUTH_REQUEST


@pytest.mark.parametrize("errcode", [42001, 40014, 40001])
async def test_expired_token_is_refreshed_once(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient], errcode: int
) -> None:
    fake, url = weixin
    fake.script = [(200, {"errcode": errcode, "errmsg": "access_token refused"})]
    async with make_client(url, access_token=token_provider("old", "new")) as client:
        result = await cloudbase.get_wechatpay_auth(client, "openjsapi", "1900006511")
    assert result.errcode == 0
    assert [token for _, token, _ in fake.calls] == ["old", "new"]
    assert fake.calls[0][2] == fake.calls[1][2]  # the same body bytes


async def test_a_second_token_error_is_reported_not_looped(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [(200, {"errcode": 40014, "errmsg": "invalid"})] * 2
    async with make_client(url, access_token=token_provider("a", "b", "c")) as client:
        with pytest.raises(CloudBaseError) as caught:
            await cloudbase.list_wechatpay_merchants(client)
    assert caught.value.errcode == 40014
    assert len(fake.calls) == 2


async def test_a_fixed_token_string_is_not_resent(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [(200, {"errcode": 40014, "errmsg": f"invalid credential {SECRET}"})]
    async with make_client(url, access_token=SECRET) as client:
        with pytest.raises(CloudBaseError) as caught:
            await cloudbase.get_wechatpay_auth(client, "bind", "1900006511")
    assert len(fake.calls) == 1
    assert SECRET not in str(caught.value)


async def test_system_busy_is_retried_other_errcodes_raise(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [
        (200, {"errcode": -1, "errmsg": "system error"}),
        (200, {"errcode": -1000, "errmsg": "system error"}),
        (200, {"errcode": 85088, "errmsg": "no qbase privilege"}),
    ]
    retry = RetryPolicy(attempts=4, sleep=False)
    async with make_client(url, access_token=SECRET, retry=retry) as client:
        with pytest.raises(CloudBaseError) as caught:
            await cloudbase.get_wechatpay_auth(client, "openrefund", "1900006511")
    assert (caught.value.errcode, caught.value.errmsg) == (85088, "no qbase privilege")
    assert len(fake.calls) == 3


async def test_merchant_list_keeps_states_and_unknown_keys(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    entry = {
        "merchant_code": "1900006511",
        "merchant_name": "MIOKKK",
        "company_name": "weappgovernment111",
        "mch_relation_state": 1,
        "jsapi_auth_state": 2,
        "refund_auth_state": 3,
        "since": "2024",
    }
    fake.script = [(200, {"errcode": 0, "errmsg": "ok", "list": [entry]})]
    async with make_client(url, access_token=SECRET) as client:
        listing = await cloudbase.list_wechatpay_merchants(client)
    assert fake.calls[0][:1] == ("/tcb/wxpaylist",)
    (merchant,) = listing.merchants
    assert (merchant.merchant_code, merchant.refund_auth_state) == ("1900006511", 3)
    assert merchant.extra == {"since": "2024"}


async def test_http_error_without_errcode_is_an_api_error(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [(502, "<html>bad gateway</html>")]
    async with make_client(url, access_token=SECRET) as client:
        with pytest.raises(ServerError) as caught:
            await cloudbase.list_wechatpay_merchants(client)
    assert caught.value.status == 502
    assert not caught.value.verified


async def test_token_never_leaks_through_transport_errors_or_logs(
    make_client: Callable[..., WxPayClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    retry = RetryPolicy(attempts=2, sleep=False)
    async with make_client("http://127.0.0.1:9", access_token=SECRET, retry=retry) as client:
        with pytest.raises(TransportError) as caught:
            await cloudbase.get_wechatpay_auth(client, "bind", "1900006511")
    rendered = "".join(traceback.format_exception(caught.value))
    assert SECRET not in rendered
    assert caught.value.__cause__ is None
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "answer",
    ["<html>maintenance</html>", '{"errcode": "0", "errmsg": "ok"}', "[1, 2]"],
)
async def test_unreadable_answers_are_unexpected_responses(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient], answer: str
) -> None:
    fake, url = weixin
    fake.script = [(200, answer)]
    async with make_client(url, access_token=SECRET) as client:
        with pytest.raises(UnexpectedResponseError):
            await cloudbase.list_wechatpay_merchants(client)


async def test_an_answer_without_errcode_is_a_success(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [(200, {"list": []})]
    async with make_client(url, access_token=SECRET) as client:
        listing = await cloudbase.list_wechatpay_merchants(client)
    assert (listing.errcode, listing.merchants) == (0, [])


@pytest.mark.parametrize(
    ("call", "status", "answer"),
    [
        ("auth", 200, {}),  # a proxy's empty object: the spec's answer always has errcode
        ("auth", 200, {"list": []}),
        ("list", 200, {}),
        ("list", 200, {"errmsg": "ok"}),
    ],
)
async def test_an_object_that_is_not_wechats_answer_is_not_a_success(
    weixin: tuple[Weixin, str],
    make_client: Callable[..., WxPayClient],
    call: str,
    status: int,
    answer: Any,
) -> None:
    fake, url = weixin
    fake.script = [(status, answer)]
    async with make_client(url, access_token=SECRET) as client:
        answer_of = (
            cloudbase.get_wechatpay_auth(client, "bind", "1900006511")
            if call == "auth"
            else cloudbase.list_wechatpay_merchants(client)
        )
        with pytest.raises(UnexpectedResponseError):
            await answer_of


async def test_an_http_error_with_errcode_zero_is_not_a_success(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    fake, url = weixin
    fake.script = [(502, {"errcode": 0, "errmsg": "ok"})]
    async with make_client(url, access_token=SECRET) as client:
        with pytest.raises(ServerError) as caught:
            await cloudbase.get_wechatpay_auth(client, "bind", "1900006511")
    assert caught.value.status == 502
    assert SECRET not in str(caught.value)


def _plain_provider() -> str:
    return SECRET


@pytest.mark.parametrize("token", ["", "two words", "tab\there", 12345, _plain_provider])
def test_an_unusable_access_token_is_refused_when_the_client_is_built(
    make_client: Callable[..., WxPayClient], token: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_client(access_token=token)
    assert caught.value.field == "access_token"
    assert SECRET not in str(caught.value)


async def test_list_states_are_kept_as_numbers_or_text(
    weixin: tuple[Weixin, str], make_client: Callable[..., WxPayClient]
) -> None:
    """Spec A1: whether the states are numbers is unconfirmed; text must not fail the list."""
    fake, url = weixin
    states = {"mch_relation_state": "1", "jsapi_auth_state": 2, "refund_auth_state": "OK"}
    fake.script = [(200, {"errcode": 0, "errmsg": "ok", "list": [states]})]
    async with make_client(url, access_token=SECRET) as client:
        (merchant,) = (await cloudbase.list_wechatpay_merchants(client)).merchants
    assert (merchant.mch_relation_state, merchant.jsapi_auth_state) == ("1", 2)
    assert merchant.refund_auth_state == "OK"
    fake.script = [(200, {"errcode": 0, "list": [{"jsapi_auth_state": True}]})]
    async with make_client(url, access_token=SECRET) as client:
        with pytest.raises(UnexpectedResponseError):
            await cloudbase.list_wechatpay_merchants(client)
