"""``/_sandbox/...``: unsigned JSON control routes for a sandbox running in another process.

They mirror the Python API (faults, simulated users and reviewers, rotation, tokens) so the
``wxpay-async sandbox`` command can be driven from any language. Bind the sandbox to loopback:
these routes have no authentication by design. Bodies and answers are JSON; unknown objects
answer 404, bad input 400 ``{"error": ...}``.

=======  =============================================  =========================================
GET      /_sandbox/identity                             mchid, serials, key mode (no secrets)
GET      /_sandbox/state | requests | deliveries        inspection (contacts never included)
POST     /_sandbox/faults                               ``{route, kind, times?, seconds?}``
POST     /_sandbox/faults/rate                          ``{kind, rate, seconds?}``
POST     /_sandbox/faults/notification                  ``{kind: duplicate|signtest, times?}``
DELETE   /_sandbox/faults                               forget every fault and rate
POST     /_sandbox/payscore/{code}/accept | close       the simulated user (``{openid?}``)
POST     /_sandbox/h5/applications/{id}/review          ``{approve?, reason?}``
POST     /_sandbox/submerchants/{sub_mchid}/approve     finish verification now
POST     /_sandbox/cloudbase/{merchant_code}/confirm    ``{action}``
POST     /_sandbox/certificates/rotate                  new platform certificate → ``{serial_no}``
GET      /_sandbox/access-token                         ``{access_token}``
POST     /_sandbox/access-token/expire                  expire it → the new ``{access_token}``
POST     /_sandbox/notifications/routes                 ``{url_prefix, target_base}`` (loopback)
POST     /_sandbox/notifications/drain                  ``{timeout?}``
=======  =============================================  =========================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from ._core import Core
from ._protocol import json_bytes
from ._routes_cloudbase import confirm
from ._routes_h5 import review_application
from ._routes_merchants import approve_submerchant
from ._routes_payscore import accept_authorization, close_authorization

__all__ = ["routes", "state_summary"]

_P = "/_sandbox"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _ok(document: Any = None) -> web.Response:
    return web.Response(body=json_bytes(document or {"ok": True}), content_type="application/json")


def _admin(handler: Callable[[web.Request, dict[str, Any]], Any]) -> Handler:
    """Parse the JSON body; turn bad input into 400 and unknown objects into 404."""

    async def wrapped(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            document = json.loads(raw) if raw.strip() else {}
            if not isinstance(document, dict):
                raise TypeError("body must be a JSON object")
            result = handler(request, document)
            if isinstance(result, Awaitable):
                result = await result
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0] if exc.args else exc)}, status=404)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return _ok(result)

    return wrapped


def state_summary(core: Core) -> dict[str, Any]:
    """The sandbox state without secrets (contacts are never included)."""
    state = core.state
    return {
        "submerchants": {
            k: {"verification_status": v.verification_status, "idempotency_key": v.idempotency_key}
            for k, v in state.submerchants.items()
        },
        "h5_applications": {str(k): v.to_json() for k, v in state.h5_applications.items()},
        "h5_authorization": dict(state.h5_authorization),
        "payscore": {k: v.to_json(core.mchid) for k, v in state.payscore.items()},
        "media": {k: attrs.asdict(v) for k, v in state.media.items()},
        "cloudbase": {k: v.to_json() for k, v in state.cloudbase.items()},
    }


def routes(core: Core) -> list[web.RouteDef]:
    def identity(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        key = core.signing_key()
        return {
            "mchid": core.mchid,
            "merchant_serial": core.identity.merchant_serial,
            "key_mode": core.options.key_mode,
            "wechatpay_serial": key.serial,
            "public_key_id": core.identity.pubkey_id,
        }

    def add_fault(_r: web.Request, d: dict[str, Any]) -> None:
        core.faults.queue(
            str(d["route"]),
            str(d["kind"]),
            int(d.get("times", 1)),
            seconds=float(d.get("seconds", 0)),
        )

    def set_rate(_r: web.Request, d: dict[str, Any]) -> None:
        core.faults.set_rate(str(d["kind"]), float(d["rate"]), seconds=float(d.get("seconds", 0)))

    def notification_fault(_r: web.Request, d: dict[str, Any]) -> None:
        core.faults.queue_notification(str(d["kind"]), int(d.get("times", 1)))

    def clear_faults(_r: web.Request, _d: dict[str, Any]) -> None:
        core.faults.clear()

    def requests(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "status": r.status,
                    "fault": r.fault,
                    "request_id": r.request_id,
                }
                for r in core.requests
            ]
        }

    def deliveries(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return {"deliveries": [attrs.asdict(d) for d in core.notifier.deliveries]}

    def accept(r: web.Request, d: dict[str, Any]) -> dict[str, Any]:
        record = accept_authorization(
            core, r.match_info["code"], str(d.get("openid", "oUserSandbox0000000000000000"))
        )
        return record.to_json(core.mchid)

    def close(r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return close_authorization(core, r.match_info["code"]).to_json(core.mchid)

    def review(r: web.Request, d: dict[str, Any]) -> dict[str, Any]:
        applyment_id = int(r.match_info["applyment_id"])
        app = review_application(
            core, applyment_id, approve=bool(d.get("approve", True)), reason=d.get("reason")
        )
        return app.to_json()

    def approve(r: web.Request, _d: dict[str, Any]) -> None:
        approve_submerchant(core, r.match_info["sub_mchid"])

    def confirm_cloudbase(r: web.Request, d: dict[str, Any]) -> dict[str, Any]:
        return confirm(core, r.match_info["merchant_code"], str(d["action"])).to_json()

    def rotate(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return {"serial_no": core.identity.rotate().serial_no}

    def token(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return {"access_token": core.tokens.current}

    def expire_token(_r: web.Request, _d: dict[str, Any]) -> dict[str, Any]:
        return {"access_token": core.tokens.expire()}

    def route_notifications(_r: web.Request, d: dict[str, Any]) -> None:
        core.notifier.route(str(d["url_prefix"]), str(d["target_base"]))

    async def drain(_r: web.Request, d: dict[str, Any]) -> None:
        try:
            await core.notifier.drain(float(d.get("timeout", 5)))
        except TimeoutError as exc:
            raise ValueError(str(exc)) from None

    return [
        web.get(f"{_P}/identity", _admin(identity)),
        web.get(f"{_P}/state", _admin(lambda _r, _d: state_summary(core))),
        web.get(f"{_P}/requests", _admin(requests)),
        web.get(f"{_P}/deliveries", _admin(deliveries)),
        web.post(f"{_P}/faults", _admin(add_fault)),
        web.post(f"{_P}/faults/rate", _admin(set_rate)),
        web.post(f"{_P}/faults/notification", _admin(notification_fault)),
        web.delete(f"{_P}/faults", _admin(clear_faults)),
        web.post(f"{_P}/payscore/{{code}}/accept", _admin(accept)),
        web.post(f"{_P}/payscore/{{code}}/close", _admin(close)),
        web.post(f"{_P}/h5/applications/{{applyment_id}}/review", _admin(review)),
        web.post(f"{_P}/submerchants/{{sub_mchid}}/approve", _admin(approve)),
        web.post(f"{_P}/cloudbase/{{merchant_code}}/confirm", _admin(confirm_cloudbase)),
        web.post(f"{_P}/certificates/rotate", _admin(rotate)),
        web.get(f"{_P}/access-token", _admin(token)),
        web.post(f"{_P}/access-token/expire", _admin(expire_token)),
        web.post(f"{_P}/notifications/routes", _admin(route_notifications)),
        web.post(f"{_P}/notifications/drain", _admin(drain)),
    ]
