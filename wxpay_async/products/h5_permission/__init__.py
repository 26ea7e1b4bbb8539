"""WeChat Pay Global H5 (web) payment permission for sub-merchants (apihk host, spec §A2).

Create an application, follow its review (``get_application`` or the ``APPLYMENT_STATE.*``
notification, whose resource is an :class:`H5ApplicationNotification`), fix a rejected one with
``modify_application``, and read the resulting ``authorization_state``. Domain changes have
their own application (``create_domain_application`` and friends).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..._client import WxPayClient
from ..._converter import structure
from ..._endpoint import Endpoint
from ..._errors import ValidationError
from ..._validation import check_text
from ._models import (
    ApplymentState,
    ApplymentType,
    AuthorizationState,
    H5Application,
    H5ApplicationChanges,
    H5ApplicationNotification,
    H5ApplicationRequest,
    H5AuthorizationStatus,
    H5DomainApplication,
    H5DomainApplicationChanges,
    H5DomainApplicationRequest,
    TransactionLimitType,
    WebsiteState,
)

__all__ = [
    "CREATE",
    "CREATE_DOMAIN",
    "GET",
    "GET_DOMAIN",
    "MODIFY",
    "MODIFY_DOMAIN",
    "STATE",
    "ApplymentState",
    "ApplymentType",
    "AuthorizationState",
    "H5Application",
    "H5ApplicationChanges",
    "H5ApplicationNotification",
    "H5ApplicationRequest",
    "H5AuthorizationStatus",
    "H5DomainApplication",
    "H5DomainApplicationChanges",
    "H5DomainApplicationRequest",
    "TransactionLimitType",
    "WebsiteState",
    "create_application",
    "create_domain_application",
    "get_application",
    "get_authorization_state",
    "get_domain_application",
    "modify_application",
    "modify_domain_application",
]

_BASE = "/v3/global/merchant/h5/permission"

CREATE = Endpoint(
    name="h5_permission.create",
    method="POST",
    host="global_",
    path=f"{_BASE}/applications",
    # WeChat refuses a second application while one is in process (400 INVALID_REQUEST), so a
    # retried create cannot produce two applications (spec §B11).
    retry_safe=True,
)
GET = Endpoint(
    name="h5_permission.get",
    method="GET",
    host="global_",
    path=f"{_BASE}/applications/{{applyment_id}}",
)
MODIFY = Endpoint(
    name="h5_permission.modify",
    method="PATCH",
    host="global_",
    path=f"{_BASE}/applications/{{applyment_id}}",
)
STATE = Endpoint(
    name="h5_permission.state", method="GET", host="global_", path=f"{_BASE}/{{sub_mchid}}"
)
CREATE_DOMAIN = Endpoint(
    name="h5_permission.create_domain",
    method="POST",
    host="global_",
    path=f"{_BASE}/domain/applications",
    # Not retried after SYSTEM_ERROR or a lost answer: WeChat does not document refusing a
    # second application with the same out_applyment_id, and nothing queries by it (§B11).
)
_CREATE_DOMAIN_REPLAY_SAFE = attrs.evolve(CREATE_DOMAIN, retry_safe=True)
GET_DOMAIN = Endpoint(
    name="h5_permission.get_domain",
    method="GET",
    host="global_",
    path=f"{_BASE}/domain/applications/{{applyment_id}}",
)
MODIFY_DOMAIN = Endpoint(
    name="h5_permission.modify_domain",
    method="PATCH",
    host="global_",
    path=f"{_BASE}/domain/applications/{{applyment_id}}",
)


def _applyment_id(value: Any) -> int:
    """An application number: a positive integer (or its decimal string)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("applyment_id", "must be a positive integer")
    return value


async def create_application(
    client: WxPayClient, application: H5ApplicationRequest | dict[str, Any]
) -> H5Application:
    """Apply for H5 payment permission for a sub-merchant.

    Errors: ``BadRequestError`` PARAM_ERROR (limit-type / screenshot / certificate rules),
    INVALID_REQUEST (already authorized, application in process: query instead, parent/child
    relation invalid, merchant penalized, domain blacklisted); ``ForbiddenError`` NO_AUTH
    (batch-apply Letter of Commitment not signed); ``RateLimitedError`` FREQUENCY_LIMIT_EXCEED
    and ``ServerError`` SYSTEM_ERROR are retried.
    Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357001
    """
    model = structure(application, H5ApplicationRequest)
    return await client.call(CREATE, H5Application, payload=model)


async def get_authorization_state(client: WxPayClient, sub_mchid: str) -> H5AuthorizationStatus:
    """A sub-merchant's H5 authorization state (unknown states are kept as text).

    Errors: ``BadRequestError`` INVALID_REQUEST (parent/child relation invalid);
    FREQUENCY_LIMIT_EXCEED and SYSTEM_ERROR are retried.
    Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357016
    """
    check_text("sub_mchid", sub_mchid, max_len=32)
    return await client.call(STATE, H5AuthorizationStatus, path_params={"sub_mchid": sub_mchid})


async def get_application(client: WxPayClient, applyment_id: int | str) -> H5Application:
    """An H5 permission application by ``applyment_id``.

    Errors: ``NotFoundError``, ``BadRequestError`` INVALID_REQUEST; SYSTEM_ERROR is retried.
    Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357003
    """
    ident = _applyment_id(applyment_id)
    return await client.call(GET, H5Application, path_params={"applyment_id": ident})


async def modify_application(
    client: WxPayClient,
    applyment_id: int | str,
    changes: H5ApplicationChanges | dict[str, Any],
) -> H5Application:
    """Resubmit a REJECTED H5 permission application with ``changes``.

    Errors: ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST (the application is not
    REJECTED), ``NotFoundError``. Not retried once sent (PATCH).
    Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357006
    """
    ident = _applyment_id(applyment_id)
    model = structure(changes, H5ApplicationChanges)
    return await client.call(
        MODIFY, H5Application, payload=model, path_params={"applyment_id": ident}
    )


async def create_domain_application(
    client: WxPayClient,
    application: H5DomainApplicationRequest | dict[str, Any],
    *,
    replay_safe: bool = False,
) -> H5DomainApplication:
    """Apply to change a sub-merchant's (or, without ``sub_mchid``, your own) H5 domains.

    Errors: ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST, ``ForbiddenError`` NO_AUTH.
    Rate-limited answers are retried. SYSTEM_ERROR and a lost answer are not, by default:
    WeChat does not document de-duplicating on ``out_applyment_id`` (spec §A2.3, §B11), and
    no query takes it, so after either the application may exist; wait for its review
    notification at ``notify_url``, or ask WeChat Pay, before applying again.
    ``replay_safe=True`` (once WeChat Pay has confirmed that a repeated ``out_applyment_id``
    is the same application) retries them too, with the same body.
    Doc: https://pay.weixin.qq.com/wiki/doc/api_external/ch/apis/chapter4_4_4.shtml
    """
    if type(replay_safe) is not bool:
        raise ValidationError("replay_safe", "must be True or False")
    model = structure(application, H5DomainApplicationRequest)
    endpoint = _CREATE_DOMAIN_REPLAY_SAFE if replay_safe else CREATE_DOMAIN
    return await client.call(endpoint, H5DomainApplication, payload=model)


async def get_domain_application(
    client: WxPayClient, applyment_id: int | str
) -> H5DomainApplication:
    """A domain-change application by ``applyment_id``.

    Errors: ``NotFoundError``, ``BadRequestError`` INVALID_REQUEST; SYSTEM_ERROR is retried.
    Doc: https://pay.weixin.qq.com/wiki/doc/api_external/ch/apis/chapter4_4_5.shtml
    """
    ident = _applyment_id(applyment_id)
    return await client.call(GET_DOMAIN, H5DomainApplication, path_params={"applyment_id": ident})


async def modify_domain_application(
    client: WxPayClient,
    applyment_id: int | str,
    changes: H5DomainApplicationChanges | dict[str, Any],
) -> H5DomainApplication:
    """Resubmit a REJECTED domain-change application with ``changes``.

    Errors: ``BadRequestError`` PARAM_ERROR / INVALID_REQUEST, ``NotFoundError``.
    Doc: https://pay.weixin.qq.com/wiki/doc/api_external/ch/apis/chapter4_4_6.shtml
    """
    ident = _applyment_id(applyment_id)
    model = structure(changes, H5DomainApplicationChanges)
    return await client.call(
        MODIFY_DOMAIN, H5DomainApplication, payload=model, path_params={"applyment_id": ident}
    )
