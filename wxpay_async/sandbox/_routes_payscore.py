"""PayScore acquiring-bank pre-authorization (spec A3.1-A3.4) and the simulated user."""

from __future__ import annotations

import re

from aiohttp import web

from ._core import Core
from ._protocol import ApiFailure, answer
from ._rules import PAYSCORE_APPLY, PAYSCORE_TERMINATE, check_https_url, check_relation
from ._schema import check, require_json_object
from ._state import PayScoreAuthorization

__all__ = ["accept_authorization", "close_authorization", "routes"]

_BASE = "/v3/payscore/acquiringbank/permissions"
_CODE = re.compile(r"[0-9A-Za-z_\-|*]{1,32}")
_TOKEN_LIFETIME = 3600.0  # apply_permissions_token is valid for one hour (A3.1)


def _lookup(core: Core, code: str, service_id: str, sub_mchid: str) -> PayScoreAuthorization:
    record = core.state.payscore.get(code)
    if (
        record is None
        or record.request["service_id"] != service_id
        or record.request["sub_mchid"] != sub_mchid
    ):
        raise ApiFailure.not_found("授权记录不存在 (no such authorization)", code="ORDER_NOT_EXIST")
    return record


def _path_code(request: web.Request) -> str:
    code = request.match_info["authorization_code"]
    if not _CODE.fullmatch(code):
        raise ApiFailure.param(
            "authorization_code",
            "1-32 digits, letters and _ - | *",
            value=code,
            location="url",
        )
    return code


def _notify(core: Core, record: PayScoreAuthorization, status: str) -> None:
    if not record.notify_url:
        return
    when = core.clock.now_dt()
    core.notifier.send(
        record.notify_url,
        event_type=f"PAYSCORE.{status}",
        summary="授权成功" if status == "USER_OPEN_SERVICE" else "解除授权成功",
        resource=record.notification_resource(core.mchid, status, when),
        associated_data="payscore",
        original_type="payscore",
        kind="payscore",
    )


def accept_authorization(core: Core, code: str, openid: str) -> PayScoreAuthorization:
    """The user opens the PayScore mini program with the token and agrees."""
    record = core.state.payscore.get(code)
    if record is None:
        raise KeyError(f"no PayScore authorization {code!r}")
    if record.authorization_state == "AVAILABLE":
        raise ValueError(f"authorization {code!r} is already AVAILABLE")
    if core.clock.now() > record.token_expires:
        raise ValueError("apply_permissions_token expired (valid one hour); apply again")
    record.authorization_state = "AVAILABLE"
    record.openid = openid
    record.authorization_success_time = core.clock.now_dt()
    record.cancel_authorization_time = None
    record.user_label = "A"
    _notify(core, record, "USER_OPEN_SERVICE")
    return record


def close_authorization(core: Core, code: str) -> PayScoreAuthorization:
    """The user closes the service in WeChat."""
    record = core.state.payscore.get(code)
    if record is None:
        raise KeyError(f"no PayScore authorization {code!r}")
    if record.authorization_state != "AVAILABLE":
        raise ValueError(f"authorization {code!r} is {record.authorization_state}, not AVAILABLE")
    record.authorization_state = "UNAVAILABLE"
    record.cancel_authorization_time = core.clock.now_dt()
    _notify(core, record, "USER_CLOSE_SERVICE")
    return record


def routes(core: Core) -> list[web.RouteDef]:
    state = core.state

    async def apply(request: web.Request) -> web.Response:
        document = require_json_object(await request.read(), request.content_type)
        check(PAYSCORE_APPLY, document)
        check_https_url(document, "notify_url")
        check_relation(state, document["sub_mchid"])
        code = document["authorization_code"]
        record = state.payscore.get(code)
        token = state.new_permissions_token()
        expires = core.clock.now() + _TOKEN_LIFETIME
        if record is not None:
            if record.request != document:
                raise ApiFailure.invalid(
                    f"authorization_code {code} was already used with different parameters"
                )
            if record.authorization_state != "UNBINDUSER":
                raise ApiFailure.invalid(f"authorization_code {code} has already been used")
            record.token, record.token_expires = token, expires
        else:
            state.payscore[code] = PayScoreAuthorization(
                authorization_code=code, request=document, token=token, token_expires=expires
            )
        return answer({"apply_permissions_token": token})

    async def query(request: web.Request) -> web.Response:
        code = _path_code(request)
        values = {}
        for name in ("service_id", "channel_id", "sub_mchid"):
            value = request.query.get(name)
            if not value:
                raise ApiFailure.param(name, "缺少必填参数 (required)", location="query")
            if len(value) > 32:
                raise ApiFailure.param(name, "at most 32 characters", location="query")
            values[name] = value
        record = _lookup(core, code, values["service_id"], values["sub_mchid"])
        if record.request["channel_id"] != values["channel_id"]:
            raise ApiFailure.not_found(
                "授权记录不存在 (no such authorization)", code="ORDER_NOT_EXIST"
            )
        return answer(record.to_json(core.mchid))

    async def terminate(request: web.Request) -> web.Response:
        code = _path_code(request)
        document = require_json_object(await request.read(), request.content_type)
        check(PAYSCORE_TERMINATE, document)
        record = _lookup(core, code, document["service_id"], document["sub_mchid"])
        channel = document.get("channel_id")
        if channel is not None and channel != record.request["channel_id"]:
            raise ApiFailure.not_found(
                "授权记录不存在 (no such authorization)", code="ORDER_NOT_EXIST"
            )
        if record.authorization_state != "AVAILABLE":
            raise ApiFailure(
                400,
                "INVALID_ORDER_STATE",
                f"authorization is {record.authorization_state}; only AVAILABLE can be terminated",
            )
        record.authorization_state = "UNAVAILABLE"
        record.cancel_authorization_time = core.clock.now_dt()
        return web.Response(status=204)

    return [
        web.post(_BASE, apply),
        web.get(f"{_BASE}/authorization-code/{{authorization_code}}", query),
        web.post(f"{_BASE}/authorization-code/{{authorization_code}}/terminate", terminate),
    ]
