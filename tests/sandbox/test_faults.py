"""Every fault kind, seen through the real client (retries, typed errors, verification)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import aiohttp
import pytest

from tests.sandbox.helpers import (
    H5_CREATE,
    H5_STATE,
    HK_CREATE,
    PS_APPLY,
    TCB_LIST,
    document,
    h5_application,
    hk_application,
    payscore_request,
    send_json,
)
from wxpay_async import (
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SignatureProbeError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    TransportError,
    WxPayClient,
)
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox
from wxpay_async.sandbox._faults import Faults

STATE = {"sub_mchid": DEFAULT_SUB_MCHID}


def faults_seen(sb: Sandbox) -> list[str | None]:
    """Faults applied, ignoring the client's own certificate downloads."""
    return [r.fault for r in sb.requests if "certificates" not in r.path]


async def test_system_error_is_retried_with_the_same_body_and_key(
    sb: Sandbox, client: WxPayClient
) -> None:
    sb.faults.queue("POST /hk/v3/merchants", "system_error", times=2)
    raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="retry1")
    assert raw.status == 200
    posts = [r for r in sb.requests if r.method == "POST"]
    assert [r.fault for r in posts] == ["system_error", "system_error", None]
    assert len({r.body for r in posts}) == 1
    assert {r.headers["Idempotency-Key"] for r in posts} == {"retry1"}
    assert [r.status for r in posts] == [500, 500, 200]
    assert sb.submerchant_count == 1


async def test_a_mis_signed_request_is_401_even_when_a_fault_is_due(sb: Sandbox) -> None:
    """A signing bug must not pass for a retryable 500 under the sandbox's fault rates."""
    sb.faults.queue("*", "system_error")
    headers = {
        "Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1",serial_no="1",nonce_str="n",'
        'timestamp="1",signature="AA=="',
        "Accept": "application/json",
        "User-Agent": "test",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{sb.url}/v3/global/merchant/h5/permission/{DEFAULT_SUB_MCHID}", headers=headers
        ) as response,
    ):
        assert response.status == 401
        assert (await response.json())["code"] == "SIGN_ERROR"
    assert faults_seen(sb) == ["system_error"]  # the fault was due, and not what answered


@pytest.mark.parametrize(
    ("endpoint", "payload", "code"),
    [
        (PS_APPLY, payscore_request(), "FREQUENCY_LIMITED"),
        (H5_CREATE, h5_application(), "FREQUENCY_LIMIT_EXCEED"),
        (HK_CREATE, hk_application(), "RATELIMIT_EXCEEDED"),
    ],
)
async def test_rate_limited_uses_the_family_code(
    sb: Sandbox, endpoint: Any, payload: dict[str, Any], code: str
) -> None:
    # On the route itself: a "*" fault would hit the certificate download that encryption
    # triggers first in certificate mode, whose (unverifiable) 429 is not this answer.
    sb.faults.queue(f"{endpoint.method} {endpoint.path}", "rate_limited")
    async with sb.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(RateLimitedError) as caught:
            await send_json(client, endpoint, payload, idempotency_key="rl1")
    assert (caught.value.status, caught.value.code) == (429, code)
    assert caught.value.verified  # error answers are signed too


async def test_unavailable_and_system_error_surface_when_not_retried(sb: Sandbox) -> None:
    sb.faults.queue("POST /v3/global/merchant/h5/permission/applications", "unavailable")
    sb.faults.queue("POST /v3/global/merchant/h5/permission/applications", "system_error")
    async with sb.client() as client:  # H5 create is a plain POST: not retried
        with pytest.raises(ServerError) as first:
            await send_json(client, H5_CREATE, h5_application())
        with pytest.raises(ServerError) as second:
            await send_json(client, H5_CREATE, h5_application())
    assert (first.value.status, first.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert (second.value.status, second.value.code) == (500, "SYSTEM_ERROR")
    assert sb.state.h5_applications == {}


async def test_delay_past_the_client_timeout(sb: Sandbox) -> None:
    sb.faults.queue("GET /v3/global/merchant/h5/permission/{sub_mchid}", "delay", seconds=0.3)
    async with sb.client(timeout=0.1, retry=RetryPolicy.none()) as client:
        with pytest.raises(RequestTimeoutError):
            await client.send(H5_STATE, path_params=STATE)
    sb.faults.queue(f"/v3/global/merchant/h5/permission/{DEFAULT_SUB_MCHID}", "delay", seconds=0.05)
    async with sb.client() as client:
        started = time.perf_counter()
        await client.send(H5_STATE, path_params=STATE)
        assert time.perf_counter() - started >= 0.05


async def test_drop_after_commits_without_answering(sb: Sandbox) -> None:
    sb.faults.queue("POST /v3/global/merchant/h5/permission/applications", "drop_after")
    async with sb.client() as client:
        with pytest.raises(TransportError):
            await send_json(client, H5_CREATE, h5_application())
    (app,) = sb.state.h5_applications.values()  # processed even though the answer was lost
    assert app.applyment_state == "PENDING"


async def test_reset_before_does_not_process(sb: Sandbox) -> None:
    sb.faults.queue("*", "reset_before")
    async with sb.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(TransportError):
            await send_json(client, H5_CREATE, h5_application())
    assert sb.state.h5_applications == {}


async def test_reset_before_a_read_is_retried(sb: Sandbox, client: WxPayClient) -> None:
    sb.faults.queue("GET /v3/global/merchant/h5/permission/{sub_mchid}", "reset_before")
    raw = await client.send(H5_STATE, path_params=STATE)
    assert document(raw)["authorization_state"] == "UNAUTHORIZED"
    assert faults_seen(sb) == ["reset_before", None]


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("unsigned", SignatureVerificationError),
        ("bad_signature", SignatureVerificationError),
        ("signtest", SignatureProbeError),
        ("stale_timestamp", TimestampOutOfWindowError),
    ],
)
async def test_signature_faults_are_rejected_by_the_client_after_processing(
    sb: Sandbox, client: WxPayClient, kind: str, error: type[Exception]
) -> None:
    sb.faults.queue("POST /v3/payscore/acquiringbank/permissions", kind)
    with pytest.raises(error) as caught:
        await send_json(client, PS_APPLY, payscore_request("SIGFAULT"))
    assert kind == "signtest" or not isinstance(caught.value, SignatureProbeError)
    assert "SIGFAULT" in sb.state.payscore  # the sandbox did the work; the answer is bad
    # The next answer on the route is clean again.
    assert (await send_json(client, PS_APPLY, payscore_request("SIGFAULT"))).status == 200


async def test_bare_path_and_star_routes(sb: Sandbox, client: WxPayClient) -> None:
    sb.faults.queue("*", "system_error")
    sb.faults.queue("/v3/global/merchant/h5/permission/{sub_mchid}", "system_error")
    assert sb.faults.pending == {
        "*": ["system_error"],
        "/v3/global/merchant/h5/permission/{sub_mchid}": ["system_error"],
    }
    await client.send(H5_STATE, path_params=STATE)  # retried through both faults
    # (In certificate mode the "*" fault may hit the client's certificate download instead.)
    assert [r.fault for r in sb.requests].count("system_error") == 2
    assert sb.requests[-1].status == 200
    assert sb.faults.pending == {}


async def test_seeded_rates_are_reproducible() -> None:
    outcomes = []
    for _ in range(2):
        async with Sandbox.start(seed=7) as sb:
            sb.faults.set_rate("system_error", 0.5)
            async with sb.client(retry=RetryPolicy.none()) as client:
                for _ in range(12):
                    with contextlib.suppress(ServerError):
                        await client.send(H5_STATE, path_params=STATE)
            outcomes.append(faults_seen(sb))
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count("system_error") < 12


def test_fault_plan_validates_its_input() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="unknown fault kind"):
        faults.queue("*", "explode")
    with pytest.raises(ValueError, match="route"):
        faults.queue("FETCH /x", "system_error")
    with pytest.raises(ValueError, match="times"):
        faults.queue("*", "system_error", times=0)
    with pytest.raises(ValueError, match="notification fault"):
        faults.queue_notification("drop_after")
    faults.set_rate("system_error", 0.6)
    with pytest.raises(ValueError, match="exceed 1"):
        faults.set_rate("unavailable", 0.6)
    faults.set_rate("system_error", 0)
    faults.set_rate("unavailable", 0.6)
    faults.clear()
    assert faults.take("GET", "/x", None) is None


async def test_admin_route_queues_faults(sb: Sandbox, client: WxPayClient) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{sb.url}/_sandbox/faults",
            json={"route": "GET /v3/global/merchant/h5/permission/{sub_mchid}", "kind": "unsigned"},
        ) as response:
            assert response.status == 200
        async with http.post(f"{sb.url}/_sandbox/faults", json={"route": "*", "kind": "x"}) as bad:
            assert bad.status == 400
    with pytest.raises(SignatureVerificationError):
        await client.send(H5_STATE, path_params=STATE)


async def test_weixin_routes_get_errcode_faults(sb: Sandbox, client: WxPayClient) -> None:
    sb.faults.queue("POST /tcb/wxpaylist", "system_error")
    sb.faults.queue("POST /tcb/wxpaylist", "signtest")  # meaningless without signatures: ignored
    query = {"access_token": sb.access_token}
    async with sb.client(retry=RetryPolicy.none()) as once:
        first = document(await once.send(TCB_LIST, query=query, body=b"{}"))
        second = document(await once.send(TCB_LIST, query=query, body=b"{}"))
    assert first == {"errcode": -1, "errmsg": "system error"}
    assert second["errcode"] == 0
