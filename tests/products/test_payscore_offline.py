"""PayScore without a server: validation, launch builders, the notification resource."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from wxpay_async import ValidationError, WxPayClient, converter
from wxpay_async.products import payscore_permissions as ps

from .conftest import Recorder
from .seeds import PAYSCORE_APPLY_REQUEST, PAYSCORE_GET_RESPONSE, PAYSCORE_OPEN_RESOURCE

BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"authorization_code": "has space"}, "authorization_code", "letters, digits"),
        ({"authorization_code": "a" * 33}, "authorization_code", "at most 32"),
        ({"service_id": ""}, "service_id", "empty"),
        ({"appid": None}, "appid", "required"),
        ({"notify_url": "http://www.qq.com"}, "notify_url", "https"),
        ({"notify_url": "https://q.com/" + "x" * 250}, "notify_url", "at most 255"),
        ({"sub_appid": "w" * 33}, "sub_appid", "at most 32"),
        ({"openid": "o1"}, "openid", "not a field"),
    ],
)
async def test_invalid_apply_raises_before_sending(
    quiet_client: tuple[WxPayClient, Recorder], changes: dict[str, Any], field: str, rule: str
) -> None:
    client, rec = quiet_client
    data = {**PAYSCORE_APPLY_REQUEST, **changes}
    with pytest.raises(ValidationError) as caught:
        await ps.apply_permissions(client, data)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert rec.requests == []


def test_authorization_code_allows_the_documented_punctuation() -> None:
    code = "AZaz09_-|*"
    model = converter.structure(
        {**PAYSCORE_APPLY_REQUEST, "authorization_code": code}, ps.PermissionApplication
    )
    assert model.authorization_code == code


async def test_get_and_terminate_validate_before_sending(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await ps.get_by_authorization_code(
            client, "code/../x", service_id="500001", channel_id="1", sub_mchid="1"
        )
    assert caught.value.field == "authorization_code"
    with pytest.raises(ValidationError) as caught:
        await ps.get_by_authorization_code(
            client, "code1", service_id="500001", channel_id="1" * 33, sub_mchid="1"
        )
    assert caught.value.field == "channel_id"
    with pytest.raises(ValidationError) as caught:
        await ps.terminate_by_authorization_code(
            client, "code1", {"service_id": "1", "sub_mchid": "1", "reason": "r" * 51}
        )
    assert caught.value.field == "reason"
    with pytest.raises(ValidationError) as caught:
        await ps.terminate_by_authorization_code(
            client, "code1", {"service_id": "1", "reason": "user asked"}
        )
    assert caught.value.field == "sub_mchid"
    assert rec.requests == []


def test_seed_query_answer_parses_both_time_forms() -> None:
    auth = converter.structure(PAYSCORE_GET_RESPONSE, ps.PayScoreAuthorization)
    assert auth.authorization_state is ps.AuthorizationState.UNAVAILABLE
    assert auth.authorization_success_time == dt.datetime(2015, 5, 20, 13, 29, 35, tzinfo=BEIJING)
    with_millis = converter.structure(
        {**PAYSCORE_GET_RESPONSE, "cancel_authorization_time": "2015-05-20T13:29:35.120+08:00"},
        ps.PayScoreAuthorization,
    )
    assert with_millis.cancel_authorization_time is not None
    assert with_millis.cancel_authorization_time.microsecond == 120000
    assert with_millis.user_label == "A"


@pytest.mark.parametrize(
    "spelling",
    [
        {"mch_id": "1230000109", "sub_mch_id": "1900000001"},
        {"mchid": "1230000109", "sub_mchid": "1900000001"},
    ],
)
def test_notification_resource_accepts_both_spellings(spelling: dict[str, str]) -> None:
    resource = {
        k: v for k, v in PAYSCORE_OPEN_RESOURCE.items() if k not in ("mch_id", "sub_mch_id")
    }
    note = converter.structure({**resource, **spelling}, ps.PermissionNotification)
    assert note.mchid == "1230000109"
    assert note.sub_mchid == "1900000001"
    assert note.extra == {}


def test_seed_notification_resource() -> None:
    note = converter.structure(
        {**PAYSCORE_OPEN_RESOURCE, "brand_new": True}, ps.PermissionNotification
    )
    assert note.user_service_status is ps.UserServiceStatus.USER_OPEN_SERVICE
    assert note.openorclose_time == dt.datetime(2018, 2, 25, 11, 22, 33, tzinfo=BEIJING)
    assert note.sub_openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert note.openid is None
    assert note.authorization_code == "4534323JKHDFE1243252"
    assert note.extra == {"brand_new": True}


def test_notification_resource_refuses_an_rfc3339_openorclose_time() -> None:
    with pytest.raises(ValidationError) as caught:
        converter.structure(
            {**PAYSCORE_OPEN_RESOURCE, "openorclose_time": "2018-02-25T11:22:33+08:00"},
            ps.PermissionNotification,
        )
    assert caught.value.field == "openorclose_time"


TOKEN = "zyx53Nkey8o4bHpxTQvd8m7e92nG5mG2+/="


def test_app_launch_request() -> None:
    request = ps.app_launch_request(TOKEN)
    assert request["businessType"] == "wxpayScoreEnable"
    assert json.loads(request["extInfo"]) == {"miniProgramType": 0}
    assert request["query"].startswith("apply_permissions_token=")
    assert "+" not in request["query"]
    assert "/" not in request["query"]
    assert parse_qs(request["query"]) == {"apply_permissions_token": [TOKEN]}


def test_jsapi_launch_params() -> None:
    params = ps.jsapi_launch_params(TOKEN)
    assert params["businessType"] == "wxpayScoreEnable"
    assert parse_qs(params["queryString"]) == {"apply_permissions_token": [TOKEN]}
    assert set(params) == {"businessType", "queryString"}


def test_miniprogram_launch_params_both_variants() -> None:
    assert ps.miniprogram_launch_params(TOKEN) == {
        "businessType": "wxpayScoreEnable",
        "extraData": {"apply_permissions_token": TOKEN},
    }
    assert ps.miniprogram_launch_params(TOKEN, navigate=True) == {
        "appId": "wxd8f3793ea3b935b8",
        "path": "pages/use/enable",
        "extraData": {"apply_permissions_token": TOKEN},
    }


@pytest.mark.parametrize("navigate", ["no", 1, None])
def test_navigate_must_be_a_boolean(navigate: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ps.miniprogram_launch_params(TOKEN, navigate=navigate)
    assert caught.value.field == "navigate"


def test_a_queried_authorization_keeps_the_users_openid_out_of_its_repr() -> None:
    answer = {**PAYSCORE_GET_RESPONSE, "openid": "oUSER-123", "sub_openid": "oSUB-456"}
    model = converter.structure(answer, ps.PayScoreAuthorization)
    assert model.openid == "oUSER-123"
    assert "oUSER-123" not in repr(model)
    assert "oSUB-456" not in repr(model)


def test_builders_accept_the_token_model_and_refuse_an_expired_one() -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = ps.PermissionsToken(apply_permissions_token=TOKEN, expires_at=now + ps.TOKEN_TTL)
    assert ps.miniprogram_launch_params(fresh)["extraData"]["apply_permissions_token"] == TOKEN
    assert TOKEN not in repr(fresh)
    stale = ps.PermissionsToken(apply_permissions_token=TOKEN, expires_at=now - dt.timedelta(1))
    assert stale.expired()
    for build in (ps.app_launch_request, ps.jsapi_launch_params, ps.miniprogram_launch_params):
        with pytest.raises(ValidationError, match="expired"):
            build(stale)


@pytest.mark.parametrize("token", ["", "t" * 2049, "+" * 700])
def test_builders_refuse_empty_or_oversized_tokens(token: str) -> None:
    # 700 "+" fit the token limit but URL-encode to 2100 characters of query.
    with pytest.raises(ValidationError) as caught:
        ps.app_launch_request(token)
    assert caught.value.field == "apply_permissions_token"
