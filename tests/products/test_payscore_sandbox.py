"""PayScore authorization against the sandbox: token, user acceptance, termination, errors."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import pytest

from wxpay_async import (
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ValidationError,
    converter,
)
from wxpay_async.products import payscore_permissions as ps
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox

from .conftest import MERCHANT_SITE, calls, notification_receiver
from .seeds import (
    PAYSCORE_APPLY_REQUEST,
    PAYSCORE_GET_RESPONSE,
    PAYSCORE_QUERY,
    PAYSCORE_TERMINATE_REQUEST,
)

BASE = "/v3/payscore/acquiringbank/permissions"
# The seed's sub_mchid does not exist in the sandbox: the seeded sub-merchant stands in.
APPLY = {**PAYSCORE_APPLY_REQUEST, "sub_mchid": DEFAULT_SUB_MCHID}
CODE = APPLY["authorization_code"]
QUERY = {"service_id": APPLY["service_id"], "channel_id": APPLY["channel_id"]}


def apply(**changes: Any) -> dict[str, Any]:
    return {**APPLY, **changes}


async def test_seed_flow_apply_accept_query_terminate(sb_any_mode: Sandbox) -> None:
    sb = sb_any_mode
    async with sb.client() as client:
        before = dt.datetime.now(dt.UTC)
        token = await ps.apply_permissions(client, apply())
        after = dt.datetime.now(dt.UTC)
        pending = await ps.get_by_authorization_code(
            client, CODE, **QUERY, sub_mchid=DEFAULT_SUB_MCHID
        )
        await sb.accept_payscore_authorization(CODE, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
        accepted = await ps.get_by_authorization_code(
            client, CODE, **QUERY, sub_mchid=DEFAULT_SUB_MCHID
        )
        await ps.terminate_by_authorization_code(
            client,
            CODE,
            {
                **PAYSCORE_TERMINATE_REQUEST,
                "service_id": APPLY["service_id"],
                "sub_mchid": DEFAULT_SUB_MCHID,
            },
        )
        closed = await ps.get_by_authorization_code(
            client, CODE, **QUERY, sub_mchid=DEFAULT_SUB_MCHID
        )
    assert token.apply_permissions_token
    assert before + ps.TOKEN_TTL <= token.expires_at <= after + ps.TOKEN_TTL
    assert pending.authorization_state is ps.AuthorizationState.UNBINDUSER
    assert accepted.authorization_state is ps.AuthorizationState.AVAILABLE
    # sub_appid was given, so the user is identified under it (sub_openid XOR openid).
    assert accepted.sub_openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert accepted.openid is None
    assert accepted.authorization_success_time is not None
    # The seed's response shape (fields the sandbox can know at this point).
    optional = {"openid", "cancel_authorization_time"}
    assert set(PAYSCORE_GET_RESPONSE) - optional <= set(converter.unstructure(accepted))
    assert closed.authorization_state is ps.AuthorizationState.UNAVAILABLE
    assert closed.cancel_authorization_time is not None
    terminate = next(r for r in calls(sb, BASE) if r.path.endswith("/terminate"))
    assert terminate.status == 204


async def test_query_is_signed_over_the_exact_query_string(sb: Sandbox) -> None:
    async with sb.client() as client:
        await ps.apply_permissions(client, apply(authorization_code="a|b*c-d_e"))
        auth = await ps.get_by_authorization_code(
            client, "a|b*c-d_e", **QUERY, sub_mchid=DEFAULT_SUB_MCHID
        )
    assert auth.authorization_code == "a|b*c-d_e"
    get = next(r for r in calls(sb, BASE) if r.method == "GET")
    path, _, query = get.path.partition("?")
    assert path == f"{BASE}/authorization-code/a%7Cb%2Ac-d_e"
    assert parse_qs(query) == {
        "service_id": [APPLY["service_id"]],
        "channel_id": [APPLY["channel_id"]],
        "sub_mchid": [DEFAULT_SUB_MCHID],
    }


async def test_token_feeds_the_launch_builders(sb: Sandbox) -> None:
    async with sb.client() as client:
        token = await ps.apply_permissions(client, apply())
    request = ps.app_launch_request(token)
    assert parse_qs(request["query"]) == {
        "apply_permissions_token": [token.apply_permissions_token]
    }
    assert ps.miniprogram_launch_params(token, navigate=True)["extraData"] == {
        "apply_permissions_token": token.apply_permissions_token
    }


async def test_dropped_apply_is_retried_under_the_same_code(sb: Sandbox) -> None:
    sb.faults.queue(f"POST {BASE}", "drop_after")
    async with sb.client() as client:
        token = await ps.apply_permissions(client, apply())
    first, second = calls(sb, BASE)
    assert first.fault == "drop_after"
    assert first.body == second.body
    assert token.apply_permissions_token
    assert list(sb.state.payscore) == [CODE]


async def test_same_code_with_other_parameters_is_refused(sb: Sandbox) -> None:
    async with sb.client() as client:
        await ps.apply_permissions(client, apply())
        with pytest.raises(BadRequestError) as caught:
            await ps.apply_permissions(client, apply(appid="wxOTHER"))
    assert caught.value.code == "INVALID_REQUEST"


async def test_unknown_code_is_not_found_and_not_retried(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(NotFoundError) as caught:
            await ps.get_by_authorization_code(client, "nope", **PAYSCORE_QUERY)
    assert caught.value.code == "ORDER_NOT_EXIST"
    assert len(calls(sb, BASE)) == 1


async def test_terminating_twice_reports_the_state(sb: Sandbox) -> None:
    terminate = {"service_id": APPLY["service_id"], "sub_mchid": DEFAULT_SUB_MCHID, "reason": "bye"}
    async with sb.client() as client:
        await ps.apply_permissions(client, apply())
        await sb.accept_payscore_authorization(CODE)
        await ps.terminate_by_authorization_code(client, CODE, terminate)
        with pytest.raises(BadRequestError) as caught:
            await ps.terminate_by_authorization_code(client, CODE, terminate)
    assert caught.value.code == "INVALID_ORDER_STATE"


async def test_a_lost_terminate_answer_surfaces_the_state_on_retry(sb: Sandbox) -> None:
    terminate = {"service_id": APPLY["service_id"], "sub_mchid": DEFAULT_SUB_MCHID, "reason": "bye"}
    async with sb.client() as client:
        await ps.apply_permissions(client, apply())
        await sb.accept_payscore_authorization(CODE)
        sb.faults.queue(
            f"POST {BASE}/authorization-code/{{authorization_code}}/terminate", "drop_after"
        )
        with pytest.raises(BadRequestError) as caught:
            await ps.terminate_by_authorization_code(client, CODE, terminate)
        after = await ps.get_by_authorization_code(
            client, CODE, **QUERY, sub_mchid=DEFAULT_SUB_MCHID
        )
    # The first attempt ended it; the retry is told so. Querying confirms.
    assert caught.value.code == "INVALID_ORDER_STATE"
    assert after.authorization_state is ps.AuthorizationState.UNAVAILABLE
    assert [r.fault for r in calls(sb, BASE) if r.path.endswith("/terminate")] == [
        "drop_after",
        None,
    ]


async def test_rate_limit_is_retried_then_typed(sb: Sandbox) -> None:
    sb.faults.queue(f"POST {BASE}", "rate_limited")
    async with sb.client() as client:
        await ps.apply_permissions(client, apply())
    assert [r.status for r in calls(sb, BASE)] == [429, 200]
    sb.faults.queue(f"POST {BASE}", "rate_limited")
    async with sb.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(RateLimitedError) as caught:
            await ps.apply_permissions(client, apply(authorization_code="other1"))
    assert caught.value.code == "FREQUENCY_LIMITED"


async def test_invalid_input_sends_nothing(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError):
            await ps.apply_permissions(client, apply(notify_url="http://www.qq.com"))
        with pytest.raises(ValidationError):
            await ps.get_by_authorization_code(client, "a b", **PAYSCORE_QUERY)
        with pytest.raises(ValidationError):
            await ps.terminate_by_authorization_code(client, CODE, {"service_id": "1"})
    assert sb.requests == []


async def test_open_and_close_notifications_carry_permission_resources(sb: Sandbox) -> None:
    async with sb.client() as client, notification_receiver(sb, client, "/payscore") as received:
        await ps.apply_permissions(client, apply(notify_url=f"{MERCHANT_SITE}/payscore"))
        await sb.accept_payscore_authorization(CODE, openid="oUser1")
        await sb.drain_notifications()
        await sb.close_payscore_authorization(CODE)
        await sb.drain_notifications()
    assert [n.event_type for n in received] == [
        "PAYSCORE.USER_OPEN_SERVICE",
        "PAYSCORE.USER_CLOSE_SERVICE",
    ]
    opened, closed = (n.resource for n in received)
    assert isinstance(opened, ps.PermissionNotification)
    assert isinstance(closed, ps.PermissionNotification)
    assert opened.user_service_status is ps.UserServiceStatus.USER_OPEN_SERVICE
    assert closed.user_service_status is ps.UserServiceStatus.USER_CLOSE_SERVICE
    assert opened.authorization_code == CODE
    assert opened.sub_mchid == DEFAULT_SUB_MCHID
    assert opened.mchid == sb.credentials.mchid
    assert opened.openorclose_time is not None
    assert opened.openorclose_time.tzinfo is not None
