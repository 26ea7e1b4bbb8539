"""H5 payment permission against the sandbox: applications, reviews, state, domain changes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.sandbox.helpers import (
    DOMAIN_CREATE,
    DOMAIN_GET,
    DOMAIN_PATCH,
    H5_CREATE,
    H5_GET,
    H5_PATCH,
    H5_STATE,
    document,
    h5_application,
    send_json,
    upload,
)
from wxpay_async import BadRequestError, NotFoundError, WxPayClient
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox


async def create(client: WxPayClient, **changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = document(await send_json(client, H5_CREATE, h5_application(**changes)))
    return result


async def state_of(client: WxPayClient, sub_mchid: str = DEFAULT_SUB_MCHID) -> str:
    raw = await client.send(H5_STATE, path_params={"sub_mchid": sub_mchid})
    body = document(raw)
    assert body["sub_mchid"] == sub_mchid
    return str(body["authorization_state"])


async def test_create_echoes_defaults_and_moves_to_review(sb: Sandbox, client: WxPayClient) -> None:
    app = await create(client)
    assert app["applyment_state"] == "PENDING"
    assert isinstance(app["applyment_id"], int)
    assert app["transaction_limit_type"] == "NORMAL_LIMIT"
    assert app["website_state"] == "HAS_LAUNCHED"
    assert app["applyment_type"] == "APPLY_FOR_PAYMENT_AUTHORITY"
    assert app["domains"] == ["shop.example.com"]
    await asyncio.sleep(0.09)  # 60 simulated seconds in the queue at time_scale 0.001
    raw = await client.send(H5_GET, path_params={"applyment_id": app["applyment_id"]})
    assert document(raw)["applyment_state"] == "UNDER_REVIEW"


async def test_review_approves_and_grants_the_limit(sb: Sandbox, client: WxPayClient) -> None:
    assert await state_of(client) == "UNAUTHORIZED"
    app = await create(client)
    await sb.review_h5_application(app["applyment_id"], approve=True)
    assert await state_of(client) == "FORMAL_AUTHORITY"
    got = document(await client.send(H5_GET, path_params={"applyment_id": app["applyment_id"]}))
    assert got["applyment_state"] == "APPROVED"


async def test_second_application_while_one_is_in_process_is_refused(client: WxPayClient) -> None:
    await create(client)
    with pytest.raises(BadRequestError, match="in the process"):
        await create(client)


async def test_rejected_application_can_be_patched_back_into_review(
    sb: Sandbox, client: WxPayClient
) -> None:
    app = await create(client)
    applyment_id = app["applyment_id"]
    with pytest.raises(BadRequestError, match="REJECTED"):
        await send_json(
            client,
            H5_PATCH,
            {"domains": ["a.example.com"]},
            path_params={"applyment_id": applyment_id},
        )
    await sb.review_h5_application(applyment_id, approve=False, reason="Site unreachable")
    got = document(await client.send(H5_GET, path_params={"applyment_id": applyment_id}))
    assert (got["applyment_state"], got["audit_reject_detail"]) == ("REJECTED", "Site unreachable")
    raw = await send_json(
        client,
        H5_PATCH,
        {"domains": ["fixed.example.com"], "website_url": "https://fixed.example.com"},
        path_params={"applyment_id": applyment_id},
    )
    patched = document(raw)
    assert patched["applyment_state"] == "PENDING"
    assert patched["domains"] == ["fixed.example.com"]
    assert "audit_reject_detail" not in patched


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"transaction_limit_type": "NO_LIMIT", "company_register_cert": "x"},
            "/business_description",
        ),
        (
            {"transaction_limit_type": "NO_LIMIT", "business_description": "We sell"},
            "/company_register_cert",
        ),
        (
            {"website_state": "UN_LAUNCHED", "transaction_limit_type": "UN_LAUNCHED_WEBSITE_LIMIT"},
            "/website_homepage_pics",
        ),
        ({"applyment_type": "APPLY_FOR_RELIEVE_LIMITED"}, "/transaction_limit_type"),
        ({"domains": []}, "/domains"),
        ({"domains": ["https://qq.com"]}, "/domains/0"),
        ({"website_url": "shop.example.com"}, "/website_url"),
        ({"notify_url": "http://merchant.example/notify"}, "/notify_url"),
        ({"notify_url": "https://merchant.example/notify?x=1"}, "/notify_url"),
        ({"transaction_limit_type": "UNLIMITED"}, "/transaction_limit_type"),
    ],
)
async def test_param_rules(client: WxPayClient, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        await create(client, **changes)
    assert caught.value.code == "PARAM_ERROR"
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == field


async def test_relieve_limited_needs_a_launched_site(sb: Sandbox, client: WxPayClient) -> None:
    with pytest.raises(BadRequestError) as caught:
        await create(
            client,
            applyment_type="APPLY_FOR_RELIEVE_LIMITED",
            transaction_limit_type="NO_LIMIT",
            website_state="UN_LAUNCHED",
        )
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/website_state"


async def test_unlaunched_site_may_only_ask_for_the_test_limit(client: WxPayClient) -> None:
    shot = document(await upload(client))["media_id"]
    with pytest.raises(BadRequestError) as caught:
        await create(
            client,
            website_state="UN_LAUNCHED",
            website_homepage_pics=[shot],
            website_business_page_pics=[shot],
        )
    assert caught.value.code == "INVALID_REQUEST"
    app = await create(
        client,
        website_state="UN_LAUNCHED",
        transaction_limit_type="UN_LAUNCHED_WEBSITE_LIMIT",
        website_homepage_pics=[shot],
        website_business_page_pics=[shot],
    )
    assert app["website_homepage_pics"] == [shot]


async def test_limit_removal_needs_formal_authority_first(sb: Sandbox, client: WxPayClient) -> None:
    cert = document(await upload(client))["media_id"]
    removal = {
        "applyment_type": "APPLY_FOR_RELIEVE_LIMITED",
        "transaction_limit_type": "NO_LIMIT",
        "business_description": "Online fruit shop",
        "company_register_cert": cert,
    }
    with pytest.raises(BadRequestError, match="Formal authority"):
        await create(client, **removal)
    first = await create(client)
    await sb.review_h5_application(first["applyment_id"])
    with pytest.raises(BadRequestError, match="permission already"):
        await create(client)
    second = await create(client, **removal)
    await sb.review_h5_application(second["applyment_id"])
    assert await state_of(client) == "AUTHORIZED"


async def test_unknown_sub_merchant_is_not_ours(client: WxPayClient) -> None:
    with pytest.raises(BadRequestError, match="parent-child"):
        await state_of(client, "1999999999")
    with pytest.raises(BadRequestError, match="parent-child"):
        await create(client, sub_mchid="1999999999")


async def test_unknown_or_malformed_application_id(client: WxPayClient) -> None:
    with pytest.raises(NotFoundError):
        await client.send(H5_GET, path_params={"applyment_id": 42})
    with pytest.raises(BadRequestError) as caught:
        await client.send(H5_GET, path_params={"applyment_id": "abc"})
    assert caught.value.detail is not None
    assert caught.value.detail["location"] == "url"


async def test_domain_application_lifecycle(sb: Sandbox, client: WxPayClient) -> None:
    body = {
        "sub_mchid": DEFAULT_SUB_MCHID,
        "domains": ["new.example.com"],
        "website_url": "https://new.example.com",
        "out_applyment_id": "DOMAIN-0001",
    }
    with pytest.raises(BadRequestError, match="no H5 payment permission"):
        await send_json(client, DOMAIN_CREATE, body)
    first = await create(client)
    await sb.review_h5_application(first["applyment_id"])
    created = document(await send_json(client, DOMAIN_CREATE, body))
    assert created["out_applyment_id"] == "DOMAIN-0001"
    again = document(await send_json(client, DOMAIN_CREATE, body))
    assert again["applyment_id"] == created["applyment_id"]
    with pytest.raises(BadRequestError, match="already used"):
        await send_json(client, DOMAIN_CREATE, {**body, "domains": ["other.example.com"]})
    ident = {"applyment_id": created["applyment_id"]}
    assert document(await client.send(DOMAIN_GET, path_params=ident))["domains"] == [
        "new.example.com"
    ]
    with pytest.raises(NotFoundError):  # a domain application is not an H5 application
        await client.send(H5_GET, path_params=ident)
    await sb.review_h5_application(created["applyment_id"], approve=False, reason="Blocked")
    patched = document(
        await send_json(
            client,
            DOMAIN_PATCH,
            {"domains": ["newer.example.com"], "website_url": "https://newer.example.com"},
            path_params=ident,
        )
    )
    assert patched["applyment_state"] == "PENDING"


async def test_automatic_review_after_the_configured_time() -> None:
    async with (
        Sandbox.start(time_scale=0.0001, h5_queue_seconds=10, h5_review_seconds=100) as sb,
        sb.client() as client,
    ):
        app = await create(client)
        stored = sb.state.h5_applications[app["applyment_id"]]
        # 110 simulated seconds = 11 ms; poll rather than trust one sleep on a busy machine.
        for _ in range(200):
            if stored.applyment_state == "APPROVED":
                break
            await asyncio.sleep(0.01)
        assert stored.applyment_state == "APPROVED"
        assert await state_of(client) == "FORMAL_AUTHORITY"


async def test_a_resubmitted_application_gets_a_full_review_of_its_own() -> None:
    # 1 simulated second in the queue, 100 in review, at 0.001 real seconds per simulated one.
    async with (
        Sandbox.start(time_scale=0.001, h5_queue_seconds=1, h5_review_seconds=100) as sb,
        sb.client() as client,
    ):
        app = await create(client)
        stored = sb.state.h5_applications[app["applyment_id"]]
        for _ in range(500):
            if stored.applyment_state != "PENDING":
                break
            await asyncio.sleep(0.001)
        assert stored.applyment_state == "UNDER_REVIEW"
        await sb.review_h5_application(app["applyment_id"], approve=False)
        await asyncio.sleep(0.05)  # the first review's timer is still running
        await send_json(
            client,
            H5_PATCH,
            {"domains": ["fixed.example.com"]},
            path_params={"applyment_id": app["applyment_id"]},
        )
        patched_at = time.perf_counter()
        for _ in range(400):
            if stored.applyment_state not in ("PENDING", "UNDER_REVIEW"):
                break
            await asyncio.sleep(0.005)
        waited = time.perf_counter() - patched_at
    assert stored.applyment_state == "APPROVED"
    assert waited >= 0.1, "approved by the first submission's timer"


async def test_review_outside_review_is_an_error(sb: Sandbox, client: WxPayClient) -> None:
    app = await create(client)
    await sb.review_h5_application(app["applyment_id"])
    with pytest.raises(ValueError, match="not in review"):
        await sb.review_h5_application(app["applyment_id"])
    with pytest.raises(KeyError):
        await sb.review_h5_application(1)
