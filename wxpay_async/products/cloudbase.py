"""Mini-program cloud-base WeChat Pay authorization (api.weixin.qq.com, spec §A1).

These two calls are not WeChat Pay v3: no request signature, no response signature, an
``access_token`` in the query string and ``{"errcode", "errmsg"}`` answers (HTTP 200 even on
failure). ``errcode`` -1 / -1000 (system busy) are retried by the retry middleware;
40001 / 40014 / 42001 (token not the latest / invalid / expired) make the call ask the client
for a fresh token (``await client.access_token(refresh=True)``) and try once more; any other
non-zero errcode raises :class:`~wxpay_async.CloudBaseError`.

The token is a credential: it never appears in logs, exception messages or chained causes
(the URL that carries it is never put in an error).
"""

from __future__ import annotations

import builtins
import enum
import json
from typing import Any

import attrs

from .._client import WxPayClient
from .._converter import dumps, structure, unstructure
from .._endpoint import Endpoint
from .._errors import CloudBaseError, UnexpectedResponseError, api_error_for
from .._validation import text
from ..trust import RawResponse
from ._common import member_of, structure_answer

__all__ = [
    "AUTH",
    "LIST",
    "TOKEN_ERRCODES",
    "AuthorizedMerchant",
    "CloudBaseAction",
    "CloudBaseResult",
    "MerchantList",
    "WechatPayAuthRequest",
    "get_wechatpay_auth",
    "list_wechatpay_merchants",
]

#: Access token refused: refresh once and resend. 40014 and 42001 are the spec's (§A1);
#: 40001 ("invalid credential, access_token is invalid or not latest") is what api.weixin.qq.com
#: answers once another process has fetched a newer token, which revokes the previous one.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

AUTH = Endpoint(
    name="cloudbase.wxpayopenauth",
    method="POST",
    host="weixin",
    path="/tcb/wxpayopenauth",
    # Asking again for the same authorization only re-prompts the same confirmation.
    retry_safe=True,
    protocol="weixin",
)
LIST = Endpoint(
    name="cloudbase.wxpaylist",
    method="POST",
    host="weixin",
    path="/tcb/wxpaylist",
    retry_safe=True,  # a read, despite the POST
    protocol="weixin",
)


class CloudBaseAction(enum.StrEnum):
    """What to ask the merchant to confirm."""

    BIND = "bind"  # bind the merchant number to the mini program
    OPENJSAPI = "openjsapi"  # JSAPI payment authorization
    OPENREFUND = "openrefund"  # API refund authorization


@attrs.frozen(kw_only=True)
class WechatPayAuthRequest:
    """Body of ``POST /tcb/wxpayopenauth``."""

    action: CloudBaseAction = attrs.field(validator=member_of(CloudBaseAction))
    merchant_code: str = attrs.field(
        validator=text(1, 32, pattern=r"\d+", describe="must be a merchant number (digits)")
    )


@attrs.frozen(kw_only=True)
class CloudBaseResult:
    """A successful answer: ``errcode`` 0, ``errmsg`` "ok"."""

    errcode: int = 0
    errmsg: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class AuthorizedMerchant:
    """One merchant number bound to the mini program.

    The meaning of the states is unpublished, and whether they are numbers is unconfirmed
    (spec A1): each is kept as WeChat sends it, an integer or a string.
    """

    merchant_code: str | None = None
    merchant_name: str | None = None
    company_name: str | None = None
    mch_relation_state: int | str | None = None
    jsapi_auth_state: int | str | None = None
    refund_auth_state: int | str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class MerchantList:
    """``POST /tcb/wxpaylist``: the merchant numbers and their authorization states."""

    errcode: int = 0
    errmsg: str | None = None
    list: builtins.list[AuthorizedMerchant] = attrs.field(factory=builtins.list)
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def merchants(self) -> builtins.list[AuthorizedMerchant]:
        """The ``list`` field under a name that does not shadow the builtin."""
        return self.list


def _redact(text_: str, token: str) -> str:
    return text_.replace(token, "***") if token else text_


def _document(raw: RawResponse, token: str, answer_key: str | None) -> dict[str, Any]:
    """The answer's JSON object: it carries ``errcode`` (spec A1), or ``answer_key`` on a 2xx.

    Anything else (``{}`` from a proxy, an HTML page) is not WeChat's answer and must not pass
    for a success: these answers are unsigned.
    """
    try:
        document = json.loads(raw.body) if raw.body else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        if raw.status < 300 and (
            "errcode" in document or (answer_key is not None and answer_key in document)
        ):
            return document
        if raw.status >= 300 and document.get("errcode") not in (None, 0):
            return document  # a non-zero errcode is WeChat's refusal, whatever the status
    excerpt = _redact(raw.body[:200].decode("utf-8", "replace"), token)
    if raw.status >= 300:
        raise api_error_for(raw.status, "HTTP_ERROR", excerpt, verified=False)
    raise UnexpectedResponseError(
        f"HTTP {raw.status} answer is not WeChat's: a JSON object with errcode"
        + (f" or {answer_key}" if answer_key else "")
        + " was expected"
    )


async def _call(
    client: WxPayClient, endpoint: Endpoint, body: bytes, *, answer_key: str | None = None
) -> tuple[dict[str, Any], RawResponse]:
    token = await client.access_token()
    refreshed = False
    while True:
        # The client never puts a weixin URL (it carries the token) in a transport error.
        raw = await client.send(endpoint, query={"access_token": token}, body=body)
        document = _document(raw, token, answer_key)
        errcode = document.get("errcode", 0)
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise UnexpectedResponseError(f"errcode is not a number: {type(errcode).__name__}")
        if errcode in TOKEN_ERRCODES and not refreshed:
            refreshed = True
            # ``stale``: when many calls see the same expired token, one refresh serves them all.
            fresh = await client.access_token(refresh=True, stale=token)
            if fresh != token:  # a fixed token string cannot be refreshed: report the error
                token = fresh
                continue
        if errcode != 0:
            raise CloudBaseError(errcode, _redact(str(document.get("errmsg", "")), token))
        return document, raw


async def get_wechatpay_auth(
    client: WxPayClient, action: CloudBaseAction | str, merchant_code: str
) -> CloudBaseResult:
    """Ask a merchant to authorize the mini program (``bind``, ``openjsapi``, ``openrefund``).

    Confirmation happens asynchronously on the merchant's side; poll
    :func:`list_wechatpay_merchants`. Errors: ``CloudBaseError`` 40097 invalid args, 41001 token
    missing, 85088 cloud development not enabled, ...; -1 / -1000 are retried; 40001 / 40014 /
    42001 refresh the token once.
    Doc: https://developers.weixin.qq.com/doc/oplatform/en/openApi/OpenApiDoc/cloudbase-common/wechatpay/getWechatPayAuth.html
    """
    request = structure({"action": action, "merchant_code": merchant_code}, WechatPayAuthRequest)
    document, raw = await _call(client, AUTH, dumps(unstructure(request)))
    return structure_answer(document, CloudBaseResult, raw)


async def list_wechatpay_merchants(client: WxPayClient) -> MerchantList:
    """The merchant numbers bound to the mini program and their authorization states.

    Errors: ``CloudBaseError`` (41001 token missing, 85088 cloud development not enabled, ...);
    -1 / -1000 are retried; 40001 / 40014 / 42001 refresh the token once.
    Doc: https://developers.weixin.qq.com/doc/oplatform/en/openApi/OpenApiDoc/cloudbase-common/wechatpay/getWechatPayList.html
    """
    # A listing may come without errcode on success, as other api.weixin.qq.com data answers do.
    document, raw = await _call(client, LIST, b"{}", answer_key="list")
    return structure_answer(document, MerchantList, raw)
