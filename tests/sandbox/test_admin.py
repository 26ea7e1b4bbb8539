"""``/_sandbox/...`` control routes: what a sandbox in another process is driven with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from tests.sandbox.helpers import (
    H5_CREATE,
    HK_CREATE,
    PS_APPLY,
    PS_QUERY,
    document,
    h5_application,
    hk_application,
    payscore_request,
    send_json,
)
from wxpay_async import WxPayClient
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox


@pytest_asyncio.fixture
async def admin(sb: Sandbox) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, f"{sb.url}/_sandbox/{path}", json=body) as response:
                return response.status, await response.json()

        yield call


async def test_identity_and_state_hide_secrets(
    sb: Sandbox, client: WxPayClient, admin: Any
) -> None:
    status, identity = await admin("GET", "identity")
    assert status == 200
    assert identity["mchid"] == sb.identity.mchid
    assert identity["wechatpay_serial"] == sb.wechatpay_serial
    assert sb.identity.apiv3_key not in str(identity)
    await send_json(client, HK_CREATE, hk_application(), idempotency_key="adm1")
    _, state = await admin("GET", "state")
    (created,) = [k for k, v in state["submerchants"].items() if v["idempotency_key"] == "adm1"]
    assert state["submerchants"][created]["verification_status"] == "Under Review"
    assert "tm@example.com" not in str(state)
    assert (await admin("POST", f"submerchants/{created}/approve"))[0] == 200
    assert sb.state.submerchants[created].verification_status == "Approved"
    _, requests = await admin("GET", "requests")
    assert [r["status"] for r in requests["requests"] if r["method"] == "POST"] == [200]


async def test_simulated_people_over_http(sb: Sandbox, client: WxPayClient, admin: Any) -> None:
    await send_json(client, PS_APPLY, payscore_request("ADMIN1"))
    status, accepted = await admin("POST", "payscore/ADMIN1/accept", {"openid": "oAdmin"})
    assert (status, accepted["authorization_state"], accepted["openid"]) == (
        200,
        "AVAILABLE",
        "oAdmin",
    )
    raw = await client.send(
        PS_QUERY,
        path_params={"authorization_code": "ADMIN1"},
        query={"service_id": "500001", "channel_id": "1230000109", "sub_mchid": DEFAULT_SUB_MCHID},
    )
    assert document(raw)["authorization_state"] == "AVAILABLE"
    assert (await admin("POST", "payscore/ADMIN1/close"))[1]["authorization_state"] == "UNAVAILABLE"
    assert (await admin("POST", "payscore/NOPE/accept"))[0] == 404

    app = document(await send_json(client, H5_CREATE, h5_application()))
    status, reviewed = await admin(
        "POST", f"h5/applications/{app['applyment_id']}/review", {"approve": False, "reason": "No"}
    )
    assert (status, reviewed["applyment_state"], reviewed["audit_reject_detail"]) == (
        200,
        "REJECTED",
        "No",
    )
    assert (await admin("POST", "h5/applications/abc/review", {}))[0] == 400


async def test_keys_tokens_routes_and_faults_over_http(sb: Sandbox, admin: Any) -> None:
    before = sb.wechatpay_serial
    _, rotated = await admin("POST", "certificates/rotate")
    assert len(sb.identity.certificates) == 2
    if sb.key_mode == "certificate":
        assert sb.wechatpay_serial == rotated["serial_no"] != before
    _, token = await admin("GET", "access-token")
    assert token["access_token"] == sb.access_token
    _, fresh = await admin("POST", "access-token/expire")
    assert fresh["access_token"] == sb.access_token != token["access_token"]
    status, _ = await admin(
        "POST",
        "notifications/routes",
        {"url_prefix": "https://merchant.example", "target_base": "http://127.0.0.1:9"},
    )
    assert status == 200
    bad, _ = await admin(
        "POST",
        "notifications/routes",
        {"url_prefix": "https://merchant.example", "target_base": "http://192.0.2.1"},
    )
    assert bad == 400
    assert (await admin("POST", "faults/rate", {"kind": "system_error", "rate": 0.25}))[0] == 200
    assert (await admin("POST", "faults/notification", {"kind": "duplicate"}))[0] == 200
    assert (await admin("POST", "faults", {"route": "*", "kind": "delay", "seconds": 1}))[0] == 200
    assert sb.faults.pending == {"*": ["delay"]}
    assert (await admin("DELETE", "faults"))[0] == 200
    assert sb.faults.pending == {}
    assert (await admin("POST", "notifications/drain", {"timeout": 1}))[0] == 200
    _, deliveries = await admin("GET", "deliveries")
    assert deliveries == {"deliveries": []}
    assert (await admin("POST", "cloudbase/1900006511/confirm", {"action": "bind"}))[0] == 404
