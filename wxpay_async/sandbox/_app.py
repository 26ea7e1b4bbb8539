"""The aiohttp application: every route, behind one pipeline that does what WeChat's gateway does.

Per request: record → fault → latency → verify (v3) → handler → sign (v3). Handlers only
raise :class:`ApiFailure` or return a response; they never sign or check signatures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from ._admin import routes as admin_routes
from ._core import Core, RecordedRequest
from ._faults import SIGNATURE_FAULTS, Fault, rate_limit_code
from ._protocol import ApiFailure, ResponseSigner, error_body, new_request_id
from ._routes_certificates import routes as certificate_routes
from ._routes_cloudbase import errcode_answer
from ._routes_cloudbase import routes as cloudbase_routes
from ._routes_h5 import routes as h5_routes
from ._routes_media import UPLOAD_PATH, signed_meta
from ._routes_media import routes as media_routes
from ._routes_merchants import routes as merchant_routes
from ._routes_payscore import routes as payscore_routes

__all__ = ["ADMIN_PREFIX", "build_app"]

ADMIN_PREFIX = "/_sandbox/"
#: Routes whose signature covers something other than the raw body.
_SIGNED_BODY: dict[str, Callable[[bytes, str], bytes]] = {UPLOAD_PATH: signed_meta}
_STALE_SECONDS = 600
_MAX_BODY = 8 * 1024 * 1024  # above the 2 MB image limit, so oversize uploads get PARAM_ERROR


def _hang_up(request: web.Request) -> None:
    """Close the connection without an answer (the client sees a disconnect)."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _error_for(fault: Fault, path: str) -> ApiFailure | None:
    if fault.kind == "system_error":
        return ApiFailure(500, "SYSTEM_ERROR", "系统错误 (system error, retry with the same body)")
    if fault.kind == "rate_limited":
        return ApiFailure(429, rate_limit_code(path), "频率超限 (frequency limited)")
    if fault.kind == "unavailable":
        return ApiFailure(503, "SERVICE_UNAVAILABLE", "服务不可用 (service unavailable)")
    return None


def _template(request: web.Request) -> str | None:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else None


def _http_failure(exc: web.HTTPException) -> ApiFailure:
    if exc.status == 405:
        return ApiFailure(405, "METHOD_NOT_ALLOWED", "this URL does not accept this method")
    return ApiFailure(
        exc.status,
        "RESOURCE_NOT_EXISTS" if exc.status == 404 else "INVALID_REQUEST",
        exc.reason or "no such API",
    )


def build_app(core: Core) -> web.Application:
    signer: ResponseSigner = core.signer

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            return await handler(request)
        body = await request.read()
        record = RecordedRequest.capture(request.method, request.raw_path, request.headers, body)
        core.record(record)
        weixin = path.startswith("/tcb/")
        fault = core.faults.take(request.method, path, _template(request))
        if fault is not None and weixin and fault.kind in SIGNATURE_FAULTS:
            fault = None  # api.weixin.qq.com answers are not signed
        record.fault = fault.kind if fault else None
        if core.options.latency:
            await asyncio.sleep(core.options.latency)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "reset_before":
            _hang_up(request)
            return web.Response(status=500)
        response = await (
            _weixin(request, handler, fault) if weixin else _v3(request, handler, fault, path)
        )
        record.status = response.status
        if fault is not None and fault.kind == "drop_after":
            # The work is done and committed; only the answer is lost.
            _hang_up(request)
            return response
        if not weixin:
            record.request_id = _sign(response, fault)
        return response

    async def _v3(
        request: web.Request, handler: Handler, fault: Fault | None, path: str
    ) -> web.Response:
        try:
            # The signature first: a forged or mis-signed request is a 401 even when a fault
            # is due, never a retryable 500 that would hide a signing bug under fault rates.
            if core.options.verify_requests:
                signed_body = await request.read()  # cached by aiohttp
                template = _template(request)
                extract = _SIGNED_BODY.get(template or "")
                if extract is not None:
                    core.verifier.check_headers(request)
                    signed_body = extract(signed_body, request.headers.get("Content-Type", ""))
                core.verifier.verify(request, signed_body)
            failure = _error_for(fault, path) if fault is not None else None
            if failure is not None:
                raise failure
            response = await handler(request)
        except ApiFailure as exc:
            return web.Response(
                status=exc.status, body=error_body(exc), content_type="application/json"
            )
        except web.HTTPException as exc:
            failure = _http_failure(exc)
            return web.Response(
                status=failure.status, body=error_body(failure), content_type="application/json"
            )
        assert isinstance(response, web.Response)
        return response

    async def _weixin(request: web.Request, handler: Handler, fault: Fault | None) -> web.Response:
        if fault is not None:
            if fault.kind in ("system_error", "rate_limited"):
                return errcode_answer(-1 if fault.kind == "system_error" else 45011)
            if fault.kind == "unavailable":
                return web.Response(status=503, text="service unavailable")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            return web.Response(status=exc.status, text=exc.reason)
        assert isinstance(response, web.Response)
        return response

    def _sign(response: web.Response, fault: Fault | None) -> str:
        raw = response.body
        body = raw if isinstance(raw, bytes) else b""
        request_id = new_request_id()
        kind = fault.kind if fault is not None else None
        if kind == "unsigned":
            response.headers["Request-ID"] = request_id
            return request_id
        headers = signer.headers(
            body,
            request_id=request_id,
            timestamp_offset=-_STALE_SECONDS if kind == "stale_timestamp" else 0,
            signature=signer.probe_signature() if kind == "signtest" else None,
        )
        if kind == "bad_signature":
            headers["Wechatpay-Signature"] = signer.corrupt(headers["Wechatpay-Signature"])
        response.headers.update(headers)
        return request_id

    app = web.Application(middlewares=[pipeline], client_max_size=_MAX_BODY)
    for build in (
        merchant_routes,
        h5_routes,
        payscore_routes,
        media_routes,
        certificate_routes,
        cloudbase_routes,
        admin_routes,
    ):
        app.add_routes(build(core))
    return app
