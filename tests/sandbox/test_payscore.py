"""PayScore pre-authorization against the sandbox: token, simulated user, query, terminate."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from tests.sandbox.helpers import (
    PS_APPLY,
    PS_QUERY,
    PS_TERMINATE,
    document,
    payscore_request,
    send_json,
)
from wxpay_async import BadRequestError, NotFoundError, WxPayClient
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox

QUERY = {"service_id": "500001", "channel_id": "1230000109", "sub_mchid": DEFAULT_SUB_MCHID}
TERMINATE = {"service_id": "500001", "sub_mchid": DEFAULT_SUB_MCHID, "reason": "contract ended"}


async def query(client: WxPayClient, code: str, **params: str) -> dict[str, Any]:
    raw = await client.send(
        PS_QUERY, path_params={"authorization_code": code}, query={**QUERY, **params}
    )
    result: dict[str, Any] = document(raw)
    return result


async def test_full_lifecycle(sb: Sandbox, client: WxPayClient) -> None:
    token = document(await send_json(client, PS_APPLY, payscore_request("LIFE-1|a*b")))
    assert 1 <= len(token["apply_permissions_token"]) <= 300
    before = await query(client, "LIFE-1|a*b")
    assert before["authorization_state"] == "UNBINDUSER"
    assert before["mchid"] == sb.identity.mchid

    await sb.accept_payscore_authorization("LIFE-1|a*b", openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    after = await query(client, "LIFE-1|a*b")
    assert after["authorization_state"] == "AVAILABLE"
    assert after["openid"] == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    dt.datetime.fromisoformat(after["authorization_success_time"])

    raw = await send_json(
        client, PS_TERMINATE, TERMINATE, path_params={"authorization_code": "LIFE-1|a*b"}
    )
    assert (raw.status, raw.body) == (204, b"")
    ended = await query(client, "LIFE-1|a*b")
    assert ended["authorization_state"] == "UNAVAILABLE"
    assert "cancel_authorization_time" in ended
    with pytest.raises(BadRequestError) as again:
        await send_json(
            client, PS_TERMINATE, TERMINATE, path_params={"authorization_code": "LIFE-1|a*b"}
        )
    assert again.value.code == "INVALID_ORDER_STATE"


async def test_sub_openid_when_sub_appid_was_given(sb: Sandbox, client: WxPayClient) -> None:
    await send_json(client, PS_APPLY, payscore_request("SUBAPP", sub_appid="wxsub0001"))
    await sb.accept_payscore_authorization("SUBAPP", openid="oSub")
    got = await query(client, "SUBAPP")
    assert (got.get("sub_openid"), "openid" in got) == ("oSub", False)


async def test_same_code_with_other_parameters_is_invalid(client: WxPayClient) -> None:
    first = document(await send_json(client, PS_APPLY, payscore_request("DUP")))
    second = document(await send_json(client, PS_APPLY, payscore_request("DUP")))
    assert first != second  # a fresh token for the same request
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, PS_APPLY, payscore_request("DUP", service_id="500002"))
    assert caught.value.code == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"authorization_code": "has space"}, "/authorization_code"),
        ({"authorization_code": "x" * 33}, "/authorization_code"),
        ({"notify_url": "http://merchant.example/n"}, "/notify_url"),
        ({"appid": ""}, "/appid"),
    ],
)
async def test_apply_param_errors(client: WxPayClient, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, PS_APPLY, payscore_request(**changes))
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == field


async def test_apply_requires_every_documented_field(client: WxPayClient) -> None:
    body = payscore_request()
    del body["channel_id"]
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, PS_APPLY, body)
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/channel_id"


async def test_query_needs_the_three_query_parameters(client: WxPayClient) -> None:
    await send_json(client, PS_APPLY, payscore_request("Q3"))
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            PS_QUERY,
            path_params={"authorization_code": "Q3"},
            query={"service_id": "500001", "sub_mchid": DEFAULT_SUB_MCHID},
        )
    assert caught.value.detail == {
        "field": "channel_id",
        "issue": "缺少必填参数 (required)",
        "location": "query",
    }


async def test_unknown_or_mismatched_authorization_is_order_not_exist(
    client: WxPayClient,
) -> None:
    await send_json(client, PS_APPLY, payscore_request("MISMATCH"))
    for code, params in (("NOPE", {}), ("MISMATCH", {"service_id": "999"})):
        with pytest.raises(NotFoundError) as caught:
            await query(client, code, **params)
        assert caught.value.code == "ORDER_NOT_EXIST"


async def test_terminate_before_the_user_accepted(client: WxPayClient) -> None:
    await send_json(client, PS_APPLY, payscore_request("EARLY"))
    with pytest.raises(BadRequestError) as caught:
        await send_json(
            client, PS_TERMINATE, TERMINATE, path_params={"authorization_code": "EARLY"}
        )
    assert caught.value.code == "INVALID_ORDER_STATE"
    with pytest.raises(BadRequestError) as bad:
        await send_json(
            client,
            PS_TERMINATE,
            {**TERMINATE, "reason": "x" * 51},
            path_params={"authorization_code": "EARLY"},
        )
    assert bad.value.detail is not None
    assert bad.value.detail["field"] == "/reason"


async def test_simulated_user_rules(sb: Sandbox, client: WxPayClient) -> None:
    with pytest.raises(KeyError):
        await sb.accept_payscore_authorization("NEVER")
    await send_json(client, PS_APPLY, payscore_request("USER"))
    with pytest.raises(ValueError, match="not AVAILABLE"):
        await sb.close_payscore_authorization("USER")
    await sb.accept_payscore_authorization("USER")
    with pytest.raises(ValueError, match="already AVAILABLE"):
        await sb.accept_payscore_authorization("USER")
    closed = await sb.close_payscore_authorization("USER")
    assert closed.authorization_state == "UNAVAILABLE"


async def test_token_expires_after_one_simulated_hour() -> None:
    async with Sandbox.start(time_scale=0.00001) as sb, sb.client() as client:
        await send_json(client, PS_APPLY, payscore_request("LATE"))
        await asyncio.sleep(0.04)  # 4000 simulated seconds
        with pytest.raises(ValueError, match="expired"):
            await sb.accept_payscore_authorization("LATE")
