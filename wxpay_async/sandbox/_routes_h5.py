"""H5 payment permission (spec A2.1-A2.4): applications, state, domain applications, reviews."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._core import Core
from ._protocol import ApiFailure, answer
from ._rules import (
    DOMAIN_CREATE,
    DOMAIN_PATCH,
    H5_CREATE,
    H5_PATCH,
    check_h5_conditions,
    check_https_url,
    check_media_ids,
    check_relation,
)
from ._schema import check, pointer, require_json_object
from ._state import H5Application

__all__ = ["review_application", "routes"]

_BASE = "/v3/global/merchant/h5/permission"
_IN_PROCESS = ("PENDING", "UNDER_REVIEW")
_DEFAULTS = {
    "transaction_limit_type": "NORMAL_LIMIT",
    "website_state": "HAS_LAUNCHED",
    "applyment_type": "APPLY_FOR_PAYMENT_AUTHORITY",
}
#: authorization_state a sub-merchant holds once an application of each limit type is approved.
_GRANTED = {
    "UN_LAUNCHED_WEBSITE_LIMIT": "AUTHORITY_TO_TEST",
    "NORMAL_LIMIT": "FORMAL_AUTHORITY",
    "NO_LIMIT": "AUTHORIZED",
}


async def _body(core: Core, request: web.Request, spec: Any) -> dict[str, Any]:
    document = require_json_object(await request.read(), request.content_type)
    check(spec, document)
    check_https_url(document, "notify_url")
    return document


def _check_media(core: Core, document: dict[str, Any]) -> None:
    # After the conditional rules, so a missing field is reported before an unknown media ID.
    if core.options.strict_media:
        check_media_ids(core.state, document)


def _schedule_review(core: Core, app: H5Application) -> None:
    """PENDING → UNDER_REVIEW after the queue time, then an automatic approval if configured."""
    app.submission += 1
    submission = app.submission

    def start_review() -> None:
        if app.submission != submission or app.applyment_state != "PENDING":
            return
        app.applyment_state = "UNDER_REVIEW"
        review_after = core.options.h5_review_seconds
        if review_after is not None:
            core.later(review_after, auto_approve)

    def auto_approve() -> None:
        # A timer of an earlier submission (rejected, then patched) must not approve this one.
        if app.submission == submission and app.applyment_state == "UNDER_REVIEW":
            review_application(core, app.applyment_id, approve=True)

    core.later(core.options.h5_queue_seconds, start_review)


def review_application(
    core: Core, applyment_id: int, *, approve: bool = True, reason: str | None = None
) -> H5Application:
    """Decide an application in review and notify its ``notify_url``."""
    app = core.state.h5_applications.get(applyment_id)
    if app is None:
        raise KeyError(f"no H5 application {applyment_id}")
    if app.applyment_state not in _IN_PROCESS:
        raise ValueError(f"application {applyment_id} is {app.applyment_state}, not in review")
    if approve:
        app.applyment_state = "APPROVED"
        app.audit_reject_detail = None
        if app.kind == "h5":
            limit = app.fields.get("transaction_limit_type", "NORMAL_LIMIT")
            core.state.h5_authorization[app.sub_mchid] = _GRANTED[limit]
    else:
        app.applyment_state = "REJECTED"
        app.audit_reject_detail = reason or "The website could not be verified."
    if app.notify_url:
        core.notifier.send(
            app.notify_url,
            event_type=f"APPLYMENT_STATE.{app.applyment_state}",
            summary="审核通过" if approve else "审核驳回",
            resource=app.to_json(),
            associated_data="h5_permission",
            original_type="applyment",
        )
    return app


def _authorization_state(core: Core, sub_mchid: str) -> str:
    return core.state.h5_authorization.get(sub_mchid, "UNAUTHORIZED")


def _check_business_rules(core: Core, sub_mchid: str, fields: dict[str, Any]) -> None:
    """The INVALID_REQUEST rows of A2.1's error table that depend on existing state."""
    for app in core.state.h5_applications.values():
        if app.kind == "h5" and app.sub_mchid == sub_mchid and app.applyment_state in _IN_PROCESS:
            raise ApiFailure.invalid(
                "The application form in the process has been submitted. Please do not submit "
                f"it repeatedly (applyment_id {app.applyment_id})."
            )
    current = _authorization_state(core, sub_mchid)
    if current == "UNDER_PUNISHMENT":
        raise ApiFailure.invalid("Action has been taken against the merchant.")
    if current == "AUTHORIZED":
        raise ApiFailure.invalid(
            'The current sub-merchant already has "No transaction limited" H5 payment '
            "authorization. Do not resubmit requests."
        )
    if fields["applyment_type"] == "APPLY_FOR_RELIEVE_LIMITED":
        if current != "FORMAL_AUTHORITY":
            raise ApiFailure.invalid(
                'Only sub-merchants with the "Formal authority transaction limited" status can '
                "request to lift the limit."
            )
    elif _GRANTED[fields["transaction_limit_type"]] == current:
        raise ApiFailure.invalid("You have the payment permission already.")


def _application_id(request: web.Request) -> int:
    raw = request.match_info["applyment_id"]
    if not raw.isdigit() or len(raw) > 19:
        raise ApiFailure.param("applyment_id", "must be an integer", value=raw, location="url")
    return int(raw)


def _find(core: Core, request: web.Request, kind: str) -> H5Application:
    applyment_id = _application_id(request)
    app = core.state.h5_applications.get(applyment_id)
    if app is None or app.kind != kind:
        raise ApiFailure.not_found(f"applyment_id {applyment_id} does not exist")
    return app


def _modify(core: Core, app: H5Application, changes: dict[str, Any]) -> None:
    if app.applyment_state != "REJECTED":
        raise ApiFailure.invalid(
            f"Only a REJECTED application can be modified (this one is {app.applyment_state})."
        )
    merged = {**app.fields, **changes}
    if app.kind == "h5":
        check_h5_conditions(merged)
    else:
        _check_domain_screenshots(merged)
    _check_media(core, changes)
    app.fields = merged
    app.applyment_state = "PENDING"
    app.audit_reject_detail = None
    _schedule_review(core, app)


def _check_domain_screenshots(fields: dict[str, Any]) -> None:
    if fields.get("website_state") == "UN_LAUNCHED":
        for name in ("website_homepage_pics", "website_business_page_pics"):
            if not fields.get(name):
                raise ApiFailure.param(
                    pointer(name), "is required when website_state is UN_LAUNCHED"
                )


def routes(core: Core) -> list[web.RouteDef]:
    state = core.state

    async def create(request: web.Request) -> web.Response:
        document = await _body(core, request, H5_CREATE)
        check_h5_conditions(document)
        _check_media(core, document)
        sub_mchid = document.pop("sub_mchid")
        check_relation(state, sub_mchid)
        fields = {**_DEFAULTS, **document}
        _check_business_rules(core, sub_mchid, fields)
        app = H5Application(
            applyment_id=state.new_applyment_id(), sub_mchid=sub_mchid, kind="h5", fields=fields
        )
        state.h5_applications[app.applyment_id] = app
        _schedule_review(core, app)
        return answer(app.to_json())

    async def authorization_state(request: web.Request) -> web.Response:
        sub_mchid = request.match_info["sub_mchid"]
        if len(sub_mchid) > 32:
            raise ApiFailure.param("sub_mchid", "at most 32 characters", location="url")
        check_relation(state, sub_mchid)
        return answer(
            {"sub_mchid": sub_mchid, "authorization_state": _authorization_state(core, sub_mchid)}
        )

    async def get_application(request: web.Request) -> web.Response:
        return answer(_find(core, request, "h5").to_json())

    async def patch_application(request: web.Request) -> web.Response:
        app = _find(core, request, "h5")
        _modify(core, app, await _body(core, request, H5_PATCH))
        return answer(app.to_json())

    async def create_domain(request: web.Request) -> web.Response:
        document = await _body(core, request, DOMAIN_CREATE)
        _check_domain_screenshots(document)
        _check_media(core, document)
        sub_mchid = document.pop("sub_mchid")
        out_id = document.pop("out_applyment_id")
        check_relation(state, sub_mchid)
        if _authorization_state(core, sub_mchid) == "UNAUTHORIZED":
            raise ApiFailure.invalid("The sub-merchant has no H5 payment permission to modify.")
        for app in state.h5_applications.values():
            if (
                app.kind == "domain"
                and app.sub_mchid == sub_mchid
                and app.out_applyment_id == out_id
            ):
                if app.fields == document:
                    return answer(app.to_json())  # the same application, sent again
                raise ApiFailure.invalid(
                    f"out_applyment_id {out_id} was already used with different content"
                )
        app = H5Application(
            applyment_id=state.new_applyment_id(),
            sub_mchid=sub_mchid,
            kind="domain",
            fields=document,
            out_applyment_id=out_id,
        )
        state.h5_applications[app.applyment_id] = app
        _schedule_review(core, app)
        return answer(app.to_json())

    async def get_domain(request: web.Request) -> web.Response:
        return answer(_find(core, request, "domain").to_json())

    async def patch_domain(request: web.Request) -> web.Response:
        app = _find(core, request, "domain")
        _modify(core, app, await _body(core, request, DOMAIN_PATCH))
        return answer(app.to_json())

    return [
        web.post(f"{_BASE}/applications", create),
        web.get(f"{_BASE}/applications/{{applyment_id}}", get_application),
        web.patch(f"{_BASE}/applications/{{applyment_id}}", patch_application),
        web.post(f"{_BASE}/domain/applications", create_domain),
        web.get(f"{_BASE}/domain/applications/{{applyment_id}}", get_domain),
        web.patch(f"{_BASE}/domain/applications/{{applyment_id}}", patch_domain),
        web.get(f"{_BASE}/{{sub_mchid}}", authorization_state),
    ]
