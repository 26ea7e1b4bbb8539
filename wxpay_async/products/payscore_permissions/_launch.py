"""Parameters that open the PayScore authorization mini program (spec §A3.5). No I/O.

The launch itself happens in the App, the in-WeChat web page or the mini program; the server
only hands these objects (JSON-serializable dicts) to that client code.
"""

from __future__ import annotations

import json
from typing import Literal, TypedDict, overload
from urllib.parse import quote

from ..._errors import ValidationError
from ._models import PermissionsToken

__all__ = [
    "BUSINESS_TYPE",
    "PAYSCORE_APPID",
    "PAYSCORE_ENABLE_PATH",
    "AppLaunchRequest",
    "JsapiLaunchParams",
    "MiniProgramLaunchParams",
    "NavigateToMiniProgramParams",
    "TokenData",
    "app_launch_request",
    "jsapi_launch_params",
    "miniprogram_launch_params",
]

BUSINESS_TYPE = "wxpayScoreEnable"
#: The PayScore mini program, for ``wx.navigateToMiniProgram`` (fixed by WeChat).
PAYSCORE_APPID = "wxd8f3793ea3b935b8"
PAYSCORE_ENABLE_PATH = "pages/use/enable"
_QUERY_MAX = 2048  # the documented limit of query / queryString / the token itself


class TokenData(TypedDict):
    apply_permissions_token: str


class AppLaunchRequest(TypedDict):
    """Fields of OpenSDK ``WXOpenBusinessView.Req`` (Android) / ``WXOpenBusinessViewReq`` (iOS)."""

    businessType: str
    query: str
    extInfo: str


class JsapiLaunchParams(TypedDict):
    """Second argument of ``wx.invoke('openBusinessView', ...)`` (jweixin ≥ 1.5.0)."""

    businessType: str
    queryString: str


class MiniProgramLaunchParams(TypedDict):
    """Argument of ``wx.openBusinessView`` (preferred: uses no navigation quota)."""

    businessType: str
    extraData: TokenData


class NavigateToMiniProgramParams(TypedDict):
    """Argument of ``wx.navigateToMiniProgram`` (the alternative)."""

    appId: str
    path: str
    extraData: TokenData


def _token(token: str | PermissionsToken) -> str:
    if isinstance(token, PermissionsToken):
        if token.expired():
            raise ValidationError(
                "apply_permissions_token",
                f"expired at {token.expires_at.isoformat()}; request a new one",
            )
        token = token.apply_permissions_token
    if not isinstance(token, str) or not token:
        raise ValidationError("apply_permissions_token", "must be a non-empty string")
    if len(token) > _QUERY_MAX:
        raise ValidationError("apply_permissions_token", f"must be at most {_QUERY_MAX} characters")
    return token


def _query(token: str) -> str:
    query = f"apply_permissions_token={quote(token, safe='')}"
    if len(query) > _QUERY_MAX:
        raise ValidationError(
            "apply_permissions_token", f"makes the query longer than {_QUERY_MAX} characters"
        )
    return query


def app_launch_request(token: str | PermissionsToken) -> AppLaunchRequest:
    """The OpenSDK request that opens PayScore authorization from an App.

    ``extInfo`` selects the release build of the mini program (``miniProgramType`` 0).
    Raises ``ValidationError`` for an empty, too long or expired token.
    """
    value = _token(token)
    return {
        "businessType": BUSINESS_TYPE,
        "query": _query(value),
        "extInfo": json.dumps({"miniProgramType": 0}, separators=(",", ":")),
    }


def jsapi_launch_params(token: str | PermissionsToken) -> JsapiLaunchParams:
    """The ``openBusinessView`` parameters for an in-WeChat web page (JSAPI)."""
    value = _token(token)
    return {"businessType": BUSINESS_TYPE, "queryString": _query(value)}


@overload
def miniprogram_launch_params(
    token: str | PermissionsToken, *, navigate: Literal[False] = False
) -> MiniProgramLaunchParams: ...


@overload
def miniprogram_launch_params(
    token: str | PermissionsToken, *, navigate: Literal[True]
) -> NavigateToMiniProgramParams: ...


def miniprogram_launch_params(
    token: str | PermissionsToken, *, navigate: bool = False
) -> MiniProgramLaunchParams | NavigateToMiniProgramParams:
    """Parameters for ``wx.openBusinessView`` (or ``wx.navigateToMiniProgram`` if ``navigate``).

    The token travels unencoded in ``extraData``; the navigate variant names the PayScore mini
    program and page, which WeChat fixes.
    """
    if type(navigate) is not bool:  # "no" is truthy: it would pick the other variant
        raise ValidationError("navigate", "must be True or False")
    value = _token(token)
    data: TokenData = {"apply_permissions_token": value}
    if navigate:
        return {"appId": PAYSCORE_APPID, "path": PAYSCORE_ENABLE_PATH, "extraData": data}
    return {"businessType": BUSINESS_TYPE, "extraData": data}
