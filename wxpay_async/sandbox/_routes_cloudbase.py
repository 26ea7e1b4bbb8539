"""api.weixin.qq.com cloud-base endpoints (spec A1): access token in the query, errcode answers.

No v3 signing applies. WeChat answers these with HTTP 200 and a non-zero ``errcode``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ._core import Core
from ._protocol import json_bytes
from ._state import CloudBaseMerchant

__all__ = ["ERRMSG", "confirm", "errcode_answer", "routes"]

ERRMSG = {
    -1: "system error",
    0: "ok",
    40014: "invalid access_token",
    40097: "invalid args",
    40101: "missing parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    43002: "require POST method",
    44002: "empty post data",
    45011: "api minute-quota reach limit",
    47001: "data format error",
}
_ACTIONS = {
    "bind": "mch_relation_state",
    "openjsapi": "jsapi_auth_state",
    "openrefund": "refund_auth_state",
}


def errcode_answer(errcode: int, **extra: Any) -> web.Response:
    document = {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error"), **extra}
    return web.Response(body=json_bytes(document), content_type="application/json")


def confirm(core: Core, merchant_code: str, action: str) -> CloudBaseMerchant:
    """The merchant confirms a request on its side (super-admin or merchant platform)."""
    merchant = core.state.cloudbase.get(merchant_code)
    if merchant is None or action not in _ACTIONS:
        raise KeyError(f"no pending {action!r} request for merchant {merchant_code}")
    setattr(merchant, _ACTIONS[action], 2)
    return merchant


async def _json_body(request: web.Request, *, allow_empty: bool) -> dict[str, Any] | int:
    body = await request.read()  # cached by aiohttp after the pipeline's read
    if not body.strip():
        return {} if allow_empty else 44002
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 47001
    return document if isinstance(document, dict) else 47001


def routes(core: Core) -> list[web.RouteDef]:
    def token_error(request: web.Request) -> int:
        return core.tokens.errcode(request.query.get("access_token"))

    async def open_auth(request: web.Request) -> web.Response:
        if errcode := token_error(request):
            return errcode_answer(errcode)
        if request.method != "POST":
            return errcode_answer(43002)
        document = await _json_body(request, allow_empty=False)
        if isinstance(document, int):
            return errcode_answer(document)
        action, code = document.get("action"), document.get("merchant_code")
        if action is None or code is None:
            return errcode_answer(40101)
        if action not in _ACTIONS or not isinstance(code, str) or not code.isdigit():
            return errcode_answer(40097)
        merchant = core.state.cloudbase.setdefault(code, CloudBaseMerchant(merchant_code=code))
        field = _ACTIONS[action]
        if getattr(merchant, field) == 0:
            setattr(merchant, field, 1)  # waiting for the merchant's confirmation
        return errcode_answer(0)

    async def merchant_list(request: web.Request) -> web.Response:
        if errcode := token_error(request):
            return errcode_answer(errcode)
        if request.method != "POST":
            return errcode_answer(43002)
        document = await _json_body(request, allow_empty=True)
        if isinstance(document, int):
            return errcode_answer(document)
        items = [m.to_json() for m in core.state.cloudbase.values()]
        return errcode_answer(0, list=items)

    return [
        web.route("*", "/tcb/wxpayopenauth", open_auth),
        web.route("*", "/tcb/wxpaylist", merchant_list),
    ]
