"""PayScore authorization for acquiring institutions (mainland host, spec §A3).

Flow: :func:`apply_permissions` returns a one-hour ``apply_permissions_token``; hand one of the
launch builders' dicts (:func:`app_launch_request`, :func:`jsapi_launch_params`,
:func:`miniprogram_launch_params`) to the client, which opens the PayScore mini program; the
user's decision arrives as a PAYSCORE.USER_OPEN_SERVICE / USER_CLOSE_SERVICE notification whose
resource is a :class:`PermissionNotification`, and can be read back with
:func:`get_by_authorization_code`. :func:`terminate_by_authorization_code` ends it.

The merchant's ``authorization_code`` is unique per merchant, so the two POSTs are safe to
retry after a lost answer (spec §B11): a replay names the same authorization.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ..._client import WxPayClient
from ..._converter import structure
from ..._endpoint import Endpoint
from .._common import identifier
from ._launch import (
    BUSINESS_TYPE,
    PAYSCORE_APPID,
    PAYSCORE_ENABLE_PATH,
    AppLaunchRequest,
    JsapiLaunchParams,
    MiniProgramLaunchParams,
    NavigateToMiniProgramParams,
    app_launch_request,
    jsapi_launch_params,
    miniprogram_launch_params,
)
from ._models import (
    TOKEN_TTL,
    AuthorizationState,
    PayScoreAuthorization,
    PermissionApplication,
    PermissionNotification,
    PermissionsToken,
    TerminateRequest,
    UserServiceStatus,
    _TokenAnswer,
    authorization_code,
)

__all__ = [
    "APPLY",
    "BUSINESS_TYPE",
    "GET",
    "PAYSCORE_APPID",
    "PAYSCORE_ENABLE_PATH",
    "TERMINATE",
    "TOKEN_TTL",
    "AppLaunchRequest",
    "AuthorizationState",
    "JsapiLaunchParams",
    "MiniProgramLaunchParams",
    "NavigateToMiniProgramParams",
    "PayScoreAuthorization",
    "PermissionApplication",
    "PermissionNotification",
    "PermissionsToken",
    "TerminateRequest",
    "UserServiceStatus",
    "app_launch_request",
    "apply_permissions",
    "get_by_authorization_code",
    "jsapi_launch_params",
    "miniprogram_launch_params",
    "terminate_by_authorization_code",
]

_BASE = "/v3/payscore/acquiringbank/permissions"

APPLY = Endpoint(
    name="payscore_permissions.apply",
    method="POST",
    host="mainland",
    path=_BASE,
    retry_safe=True,  # authorization_code is a unique business key
)
GET = Endpoint(
    name="payscore_permissions.get",
    method="GET",
    host="mainland",
    path=f"{_BASE}/authorization-code/{{authorization_code}}",
)
TERMINATE = Endpoint(
    name="payscore_permissions.terminate",
    method="POST",
    host="mainland",
    path=f"{_BASE}/authorization-code/{{authorization_code}}/terminate",
    retry_safe=True,  # terminating twice ends the same authorization
)


@attrs.frozen(kw_only=True)
class _AuthorizationQuery:
    authorization_code: str = attrs.field(validator=authorization_code())
    service_id: str = attrs.field(validator=identifier())
    channel_id: str = attrs.field(validator=identifier())
    sub_mchid: str = attrs.field(validator=identifier())


@attrs.frozen(kw_only=True)
class _CodeOnly:
    authorization_code: str = attrs.field(validator=authorization_code())


async def apply_permissions(
    client: WxPayClient, request: PermissionApplication | dict[str, Any]
) -> PermissionsToken:
    """Pre-authorize: get the ``apply_permissions_token`` that launches PayScore authorization.

    ``expires_at`` is receipt time + 1 hour (computed here; see :class:`PermissionsToken`).
    Errors: ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST (same authorization_code with
    different parameters), ``ForbiddenError`` NO_AUTH; FREQUENCY_LIMITED and SYSTEM_ERROR are
    retried.
    Doc: https://pay.weixin.qq.com/docs/partner/apis/partner-institution-weixin-pay-score/acquiring-bank-service-auth/apply-acquiring-bank-permissions.html
    """
    model = structure(request, PermissionApplication)
    answer = await client.call(APPLY, _TokenAnswer, payload=model)
    received = dt.datetime.now(dt.UTC)
    return PermissionsToken(
        apply_permissions_token=answer.apply_permissions_token,
        expires_at=received + TOKEN_TTL,
        extra=answer.extra,
    )


async def get_by_authorization_code(
    client: WxPayClient,
    authorization_code: str,
    *,
    service_id: str,
    channel_id: str,
    sub_mchid: str,
) -> PayScoreAuthorization:
    """The user's authorization for ``authorization_code`` (state, openid, times).

    Errors: ``NotFoundError`` ORDER_NOT_EXIST, ``BadRequestError`` PARAM_ERROR,
    ``ForbiddenError`` NO_AUTH; FREQUENCY_LIMITED and SYSTEM_ERROR are retried.
    Doc: https://pay.weixin.qq.com/docs/partner/apis/partner-institution-weixin-pay-score/acquiring-bank-service-auth/get-acquiring-bank-permissions-by-code.html
    """
    query = structure(
        {
            "authorization_code": authorization_code,
            "service_id": service_id,
            "channel_id": channel_id,
            "sub_mchid": sub_mchid,
        },
        _AuthorizationQuery,
    )
    return await client.call(
        GET,
        PayScoreAuthorization,
        path_params={"authorization_code": query.authorization_code},
        query={
            "service_id": query.service_id,
            "channel_id": query.channel_id,
            "sub_mchid": query.sub_mchid,
        },
    )


async def terminate_by_authorization_code(
    client: WxPayClient,
    authorization_code: str,
    request: TerminateRequest | dict[str, Any],
) -> None:
    """End the user's authorization for ``authorization_code``; WeChat answers 204.

    Errors: ``NotFoundError`` ORDER_NOT_EXIST, ``BadRequestError`` INVALID_ORDER_STATE /
    ORDER_CANCELED / ORDER_DONE / PARAM_ERROR, ``ForbiddenError`` NO_AUTH; FREQUENCY_LIMITED and
    SYSTEM_ERROR are retried. After a lost answer the retry may meet INVALID_ORDER_STATE because
    the first attempt already ended the authorization: query to confirm.
    Doc: https://pay.weixin.qq.com/docs/partner/apis/partner-institution-weixin-pay-score/acquiring-bank-service-auth/terminate-acquiring-bank-permissions-by-code.html
    """
    code = structure({"authorization_code": authorization_code}, _CodeOnly)
    model = structure(request, TerminateRequest)
    # Only 204 is documented; a 200 with a JSON body is accepted and ignored.
    await client.call(
        TERMINATE,
        dict,
        payload=model,
        path_params={"authorization_code": code.authorization_code},
    )
