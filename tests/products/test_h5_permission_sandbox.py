"""H5 payment permission against the sandbox: lifecycle, errors, domains, notification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from copy import deepcopy
from typing import Any

import pytest

from wxpay_async import (
    BadRequestError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
    WxPayClient,
    converter,
)
from wxpay_async.products import h5_permission, media
from wxpay_async.products.h5_permission import (
    ApplymentState,
    AuthorizationState,
    H5ApplicationNotification,
)
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox

from .conftest import MERCHANT_SITE, TIME_SCALE, calls, notification_receiver
from .seeds import H5_CREATE_REQUEST, H5_CREATE_RESPONSE

BASE = "/v3/global/merchant/h5/permission"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def lax_sb() -> AsyncIterator[Sandbox]:
    """A sandbox that accepts media IDs it did not issue (the seed's own example IDs)."""
    async with Sandbox.start(time_scale=TIME_SCALE, strict_media=False) as sandbox:
        yield sandbox


async def screenshots(client: WxPayClient) -> list[str]:
    upload = await media.upload_image(client, "home.png", PNG, host="global_")
    return [upload.media_id]


def launched(**changes: Any) -> dict[str, Any]:
    data = {
        "sub_mchid": DEFAULT_SUB_MCHID,
        "domains": ["shop.example.com"],
        "website_url": "https://shop.example.com",
    }
    data.update(changes)
    return data


async def test_seed_example_creates_a_pending_application(lax_sb: Sandbox) -> None:
    # The seed's sub_mchid does not exist in the sandbox: the seeded sub-merchant stands in.
    request = {**deepcopy(H5_CREATE_REQUEST), "sub_mchid": DEFAULT_SUB_MCHID}
    async with lax_sb.client() as client:
        app = await h5_permission.create_application(client, request)
        again = await h5_permission.get_application(client, app.applyment_id)
    assert app.applyment_state is ApplymentState.PENDING
    shape = converter.unstructure(app)
    expected = set(H5_CREATE_RESPONSE) - {"audit_reject_detail", "business_description"}
    assert expected <= set(shape)
    assert app.domains == H5_CREATE_REQUEST["domains"]
    assert app.website_homepage_pics == H5_CREATE_REQUEST["website_homepage_pics"]
    assert again == app
    (sent,) = calls(lax_sb, f"{BASE}/applications")[:1]
    assert sent.method == "POST"


async def test_rejected_application_is_modified_then_approved(sb_any_mode: Sandbox) -> None:
    sb = sb_any_mode
    async with sb.client() as client:
        pics = await screenshots(client)
        app = await h5_permission.create_application(
            client,
            launched(
                website_state="UN_LAUNCHED",
                transaction_limit_type="UN_LAUNCHED_WEBSITE_LIMIT",
                website_homepage_pics=pics,
                website_business_page_pics=pics,
            ),
        )
        await sb.review_h5_application(app.applyment_id, approve=False, reason="bad screenshot")
        rejected = await h5_permission.get_application(client, app.applyment_id)
        changed = await h5_permission.modify_application(
            client,
            str(app.applyment_id),
            {"domains": ["shop.example.com", "m.example.com"], "website_homepage_pics": pics},
        )
        await sb.review_h5_application(app.applyment_id, approve=True)
        approved = await h5_permission.get_application(client, app.applyment_id)
        state = await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
    assert rejected.applyment_state is ApplymentState.REJECTED
    assert rejected.audit_reject_detail == "bad screenshot"
    assert changed.applyment_state is ApplymentState.PENDING
    assert changed.domains == ["shop.example.com", "m.example.com"]
    assert approved.applyment_state is ApplymentState.APPROVED
    assert state.authorization_state is AuthorizationState.AUTHORITY_TO_TEST


async def test_only_a_rejected_application_can_be_modified(sb: Sandbox) -> None:
    async with sb.client() as client:
        app = await h5_permission.create_application(client, launched())
        with pytest.raises(BadRequestError) as caught:
            await h5_permission.modify_application(
                client, app.applyment_id, {"domains": ["x.example.com"]}
            )
    assert caught.value.code == "INVALID_REQUEST"
    assert len([r for r in sb.requests if r.method == "PATCH"]) == 1  # PATCH is not retried


async def test_second_application_in_process_is_refused_without_retry(sb: Sandbox) -> None:
    async with sb.client() as client:
        await h5_permission.create_application(client, launched())
        with pytest.raises(BadRequestError) as caught:
            await h5_permission.create_application(client, launched())
    assert caught.value.code == "INVALID_REQUEST"
    assert len(calls(sb, f"{BASE}/applications")) == 2


async def test_a_dropped_create_is_retried_and_duplicate_detection_keeps_one(sb: Sandbox) -> None:
    # The retry reaches WeChat's duplicate check: the caller learns that an application exists
    # (and queries it) instead of getting a second one.
    sb.faults.queue(f"POST {BASE}/applications", "drop_after")
    async with sb.client() as client:
        with pytest.raises(BadRequestError) as caught:
            await h5_permission.create_application(client, launched())
    assert caught.value.code == "INVALID_REQUEST"
    assert [r.fault for r in calls(sb, f"{BASE}/applications")] == ["drop_after", None]
    assert len(sb.state.h5_applications) == 1


async def test_unknown_sub_merchant_is_an_invalid_relation(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(BadRequestError) as caught:
            await h5_permission.create_application(client, launched(sub_mchid="1999999999"))
        with pytest.raises(BadRequestError):
            await h5_permission.get_authorization_state(client, "1999999999")
    assert caught.value.code == "INVALID_REQUEST"


async def test_global_rate_limit_is_retried_then_typed(sb: Sandbox) -> None:
    sb.faults.queue(f"GET {BASE}/{{sub_mchid}}", "rate_limited")
    async with sb.client() as client:
        status = await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
    assert status.authorization_state is AuthorizationState.UNAUTHORIZED
    assert [r.status for r in calls(sb, f"{BASE}/{DEFAULT_SUB_MCHID}")] == [429, 200]

    sb.faults.queue(f"GET {BASE}/{{sub_mchid}}", "rate_limited")
    async with sb.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(RateLimitedError) as caught:
            await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
    assert caught.value.code == "FREQUENCY_LIMIT_EXCEED"


async def test_state_query_in_both_key_modes(sb_any_mode: Sandbox) -> None:
    async with sb_any_mode.client() as client:
        status = await h5_permission.get_authorization_state(client, DEFAULT_SUB_MCHID)
    assert status.sub_mchid == DEFAULT_SUB_MCHID
    assert status.authorization_state is AuthorizationState.UNAUTHORIZED


async def test_unknown_application_is_not_found(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(NotFoundError):
            await h5_permission.get_application(client, 987654321)
        with pytest.raises(NotFoundError):
            await h5_permission.get_domain_application(client, 987654321)


async def approved(sb: Sandbox, client: WxPayClient) -> None:
    """The sub-merchant's H5 application, approved: domain changes may follow."""
    app = await h5_permission.create_application(client, launched())
    await sb.review_h5_application(app.applyment_id, approve=True)


async def test_domain_application_lifecycle(sb: Sandbox) -> None:
    async with sb.client() as client:
        await approved(sb, client)
        request = launched(out_applyment_id="dom-001", domains=["new.example.com"])
        sb.faults.queue(f"POST {BASE}/domain/applications", "drop_after")
        domain = await h5_permission.create_domain_application(client, request, replay_safe=True)
        await sb.review_h5_application(domain.applyment_id, approve=False, reason="unreachable")
        changed = await h5_permission.modify_domain_application(
            client,
            domain.applyment_id,
            {"domains": ["www.example.com"], "website_url": "https://www.example.com"},
        )
        fetched = await h5_permission.get_domain_application(client, domain.applyment_id)
    # replay_safe: the dropped answer was retried; out_applyment_id made the replay the same
    # application (as the sandbox models it; WeChat does not document it, hence opt-in).
    posts = [r for r in calls(sb, f"{BASE}/domain/applications") if r.method == "POST"]
    assert [r.fault for r in posts] == ["drop_after", None]
    assert posts[0].body == posts[1].body
    assert domain.out_applyment_id == "dom-001"
    assert domain.website_url == "https://shop.example.com"
    assert changed.applyment_state is ApplymentState.PENDING
    assert fetched.domains == ["www.example.com"]
    assert sum(1 for a in sb.state.h5_applications.values() if a.kind == "domain") == 1


async def test_a_lost_domain_application_answer_is_not_replayed_by_default(sb: Sandbox) -> None:
    async with sb.client() as client:
        await approved(sb, client)
        request = launched(out_applyment_id="dom-002", domains=["new.example.com"])
        sb.faults.queue(f"POST {BASE}/domain/applications", "drop_after")
        with pytest.raises(TransportError):
            await h5_permission.create_domain_application(client, request)
        sb.faults.queue(f"POST {BASE}/domain/applications", "system_error")
        with pytest.raises(ServerError):
            await h5_permission.create_domain_application(
                client, launched(out_applyment_id="dom-003", domains=["b.example.com"])
            )
    posts = [r for r in calls(sb, f"{BASE}/domain/applications") if r.method == "POST"]
    assert [r.fault for r in posts] == ["drop_after", "system_error"]  # one attempt each


async def test_invalid_input_sends_nothing(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError):
            await h5_permission.create_application(
                client, launched(transaction_limit_type="NO_LIMIT")
            )
        with pytest.raises(ValidationError):
            await h5_permission.modify_application(client, 0, {"domains": ["a.com"]})
        with pytest.raises(ValidationError):
            await h5_permission.create_domain_application(client, launched())
    assert sb.requests == []


async def test_review_notification_resource_is_an_h5_application(sb: Sandbox) -> None:
    async with sb.client() as client, notification_receiver(sb, client, "/notify/h5") as received:
        app = await h5_permission.create_application(
            client, launched(notify_url=f"{MERCHANT_SITE}/notify/h5")
        )
        await sb.review_h5_application(app.applyment_id, approve=True)
        await sb.drain_notifications()
    (notification,) = received
    assert notification.event_type == "APPLYMENT_STATE.APPROVED"
    resource = notification.resource
    assert isinstance(resource, H5ApplicationNotification)
    assert resource.applyment_id == app.applyment_id
    assert resource.applyment_state is ApplymentState.APPROVED
