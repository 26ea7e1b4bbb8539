"""/tcb/* against the sandbox: access tokens and errcode answers (no v3 signing)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.helpers import TCB_AUTH, TCB_LIST, document
from wxpay_async import Endpoint, WxPayClient
from wxpay_async.sandbox import Sandbox


async def call(
    client: WxPayClient, endpoint: Endpoint, body: bytes | None, token: str | None
) -> dict[str, Any]:
    query = {"access_token": token} if token is not None else None
    raw = await client.send(endpoint, query=query, body=body)
    assert raw.status == 200
    assert "Wechatpay-Signature" not in raw.headers
    result: dict[str, Any] = document(raw)
    return result


async def test_bind_then_list_and_confirm(sb: Sandbox, client: WxPayClient) -> None:
    ok = await call(
        client, TCB_AUTH, b'{"action":"bind","merchant_code":"1900006511"}', sb.access_token
    )
    assert ok == {"errcode": 0, "errmsg": "ok"}
    await call(
        client, TCB_AUTH, b'{"action":"openjsapi","merchant_code":"1900006511"}', sb.access_token
    )
    listed = await call(client, TCB_LIST, b"{}", sb.access_token)
    (merchant,) = listed["list"]
    assert (merchant["merchant_code"], merchant["mch_relation_state"]) == ("1900006511", 1)
    assert (merchant["jsapi_auth_state"], merchant["refund_auth_state"]) == (1, 0)
    sb.confirm_cloudbase("1900006511", "bind")
    listed = await call(client, TCB_LIST, None, sb.access_token)
    assert listed["list"][0]["mch_relation_state"] == 2


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (b"", 44002),
        (b"{not json", 47001),
        (b'{"merchant_code":"1900006511"}', 40101),
        (b'{"action":"pay","merchant_code":"1900006511"}', 40097),
        (b'{"action":"bind","merchant_code":"abc"}', 40097),
    ],
)
async def test_bad_bodies(sb: Sandbox, client: WxPayClient, body: bytes, errcode: int) -> None:
    assert (await call(client, TCB_AUTH, body, sb.access_token))["errcode"] == errcode


async def test_tokens(sb: Sandbox, client: WxPayClient) -> None:
    body = b'{"action":"bind","merchant_code":"1900006511"}'
    assert (await call(client, TCB_AUTH, body, None))["errcode"] == 41001
    assert (await call(client, TCB_AUTH, body, "made-up"))["errcode"] == 40014
    old = sb.access_token
    new = sb.expire_access_token()
    assert new == sb.access_token != old
    assert (await call(client, TCB_AUTH, body, old))["errcode"] == 42001
    assert await sb.access_token_provider() == new
    assert await client.access_token(refresh=True) == new
    assert (await call(client, TCB_AUTH, body, new))["errcode"] == 0


async def test_get_is_refused(sb: Sandbox, client: WxPayClient) -> None:
    endpoint = Endpoint(
        name="tcb", method="GET", host="weixin", path="/tcb/wxpaylist", protocol="weixin"
    )
    assert (await call(client, endpoint, None, sb.access_token))["errcode"] == 43002
