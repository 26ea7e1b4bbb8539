"""HK onboarding against the sandbox: idempotent retries, errors, both key modes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from copy import deepcopy
from typing import Any

import pytest

from wxpay_async import (
    BadRequestError,
    DecryptionError,
    MerchantCredentials,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SignatureProbeError,
    SignatureRejectedError,
    SignatureVerificationError,
    ValidationError,
    converter,
)
from wxpay_async.crypto import Padding
from wxpay_async.products import hk_merchants, media
from wxpay_async.sandbox import Identity, Sandbox

from .conftest import TIME_SCALE, calls
from .seeds import HK_CREATE_REQUEST, HK_CREATE_RESPONSE

PATH = "/hk/v3/merchants"


def application(sandbox: Sandbox, **changes: Any) -> dict[str, Any]:
    data = deepcopy(HK_CREATE_REQUEST)
    data["sp_mchid"] = sandbox.credentials.mchid
    data.update(changes)
    return data


@pytest.fixture(params=["public_key", "certificate"])
async def seed_sb(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """A sandbox whose institution is the seed's own ``sp_mchid``."""
    identity = Identity.generate(mchid=HK_CREATE_REQUEST["sp_mchid"])
    async with Sandbox.start(
        key_mode=request.param, identity=identity, time_scale=TIME_SCALE
    ) as sandbox:
        yield sandbox


async def test_seed_example_onboards_and_reads_back_decrypted(seed_sb: Sandbox) -> None:
    async with seed_sb.client() as client:
        created = await hk_merchants.create_submerchant(client, deepcopy(HK_CREATE_REQUEST))
        fetched = await hk_merchants.get_submerchant(
            client,
            created.sub_mchid,
            sp_appid=HK_CREATE_REQUEST["sp_appid"],
            sp_mchid=HK_CREATE_REQUEST["sp_mchid"],
        )
    # The seed's response shape: sub_mchid, verification_status, description.
    assert set(HK_CREATE_RESPONSE) <= set(converter.unstructure(created))
    assert created.verification_status in tuple(hk_merchants.VerificationStatus)
    assert created.description
    assert created.extra == {}
    assert seed_sb.created_count(created.idempotency_key or "") == 1
    (sent,) = calls(seed_sb, PATH)[:1]
    assert sent.headers["Idempotency-Key"] == created.idempotency_key
    assert sent.headers["Wechatpay-Serial"] == seed_sb.wechatpay_serial
    assert fetched.sub_mchid == created.sub_mchid
    assert fetched.contact is not None
    contact = HK_CREATE_REQUEST["contact"]
    assert (fetched.contact.name, fetched.contact.phone, fetched.contact.email) == (
        contact["name"],
        contact["phone"],
        contact["email"],
    )
    assert fetched.business is not None
    assert fetched.business.mcc == "5344"
    assert fetched.director is not None
    assert fetched.director.name == "Tom"
    assert fetched.merchant_type is hk_merchants.MerchantType.ENTERPRISE


async def test_dropped_answer_is_retried_and_creates_exactly_one(sb: Sandbox) -> None:
    sb.faults.queue(f"POST {PATH}", "drop_after")
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb))
    first, second = calls(sb, PATH)
    assert first.fault == "drop_after"
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.headers["Idempotency-Key"] == created.idempotency_key
    assert first.body == second.body  # byte-identical, encrypted contact included
    assert sb.created_count(created.idempotency_key or "") == 1
    assert sb.submerchant_count == 1


async def test_500_then_429_then_success_signs_each_attempt_afresh(
    sb: Sandbox, signatures: list[str]
) -> None:
    sb.faults.queue(f"POST {PATH}", "system_error")
    sb.faults.queue(f"POST {PATH}", "rate_limited")
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb))
    attempts = calls(sb, PATH)
    assert [r.status for r in attempts] == [500, 429, 200]
    assert len({r.headers["Idempotency-Key"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1
    assert len(signatures) == 3
    assert len(set(signatures)) == 3
    assert sb.created_count(created.idempotency_key or "") == 1


async def test_persistent_system_error_gives_up_after_the_policy(sb: Sandbox) -> None:
    sb.faults.queue(f"POST {PATH}", "system_error", times=3)
    retry = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002, wait_jitter=0)
    async with sb.client(retry=retry) as client:
        with pytest.raises(ServerError) as caught:
            await hk_merchants.create_submerchant(client, application(sb))
    assert caught.value.code == "SYSTEM_ERROR"
    assert caught.value.request_id
    assert len(calls(sb, PATH)) == 3
    assert sb.submerchant_count == 0


async def test_rate_limit_without_retries_is_typed(sb: Sandbox) -> None:
    sb.faults.queue(f"POST {PATH}", "rate_limited")
    async with sb.client(retry=RetryPolicy.none()) as client:
        with pytest.raises(RateLimitedError) as caught:
            await hk_merchants.create_submerchant(client, application(sb))
    assert caught.value.status == 429
    assert len(calls(sb, PATH)) == 1


async def test_caller_key_replays_and_a_different_body_is_refused(sb: Sandbox) -> None:
    async with sb.client() as client:
        first = await hk_merchants.create_submerchant(
            client, application(sb), idempotency_key="order42"
        )
        with pytest.raises(BadRequestError) as caught:
            await hk_merchants.create_submerchant(
                client, application(sb, shortname="other"), idempotency_key="order42"
            )
    assert first.idempotency_key == "order42"
    assert caught.value.code == "INVALID_REQUEST"
    assert len(calls(sb, PATH)) == 2  # a 400 is not retried
    assert sb.created_count("order42") == 1


async def test_a_journaled_preparation_resends_the_same_bytes_after_a_probe(sb: Sandbox) -> None:
    # The answer is a WECHATPAY/SIGNTEST/ probe: never trusted, although WeChat did the work.
    sb.faults.queue(f"POST {PATH}", "signtest")
    async with sb.client() as client:
        prepared = await hk_merchants.prepare_create(client, application(sb))
        journal = (prepared.idempotency_key, prepared.body, prepared.wechatpay_serial)
        with pytest.raises(SignatureProbeError):
            await hk_merchants.send_prepared(client, prepared)
        key, body, serial = journal
        resumed = hk_merchants.PreparedCreate(
            idempotency_key=key, body=body, wechatpay_serial=serial
        )
        created = await hk_merchants.send_prepared(client, resumed)
    first, second = calls(sb, PATH)
    assert first.body == second.body == body
    assert created.idempotency_key == key
    assert sb.created_count(key) == 1


@pytest.mark.parametrize("fault", ["unsigned", "bad_signature", "stale_timestamp"])
async def test_unverifiable_answers_are_refused(sb: Sandbox, fault: str) -> None:
    sb.faults.queue(f"POST {PATH}", fault)
    async with sb.client() as client:
        with pytest.raises(SignatureVerificationError):
            await hk_merchants.create_submerchant(client, application(sb))
    assert len(calls(sb, PATH)) == 1


async def test_oaep_contact_is_accepted_too(sb: Sandbox) -> None:
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(
            client, application(sb), padding=Padding.OAEP
        )
        fetched = await hk_merchants.get_submerchant(
            client,
            created.sub_mchid,
            sp_appid=HK_CREATE_REQUEST["sp_appid"],
            sp_mchid=sb.credentials.mchid,
        )
    assert fetched.contact is not None
    assert fetched.contact.email == HK_CREATE_REQUEST["contact"]["email"]


async def test_contact_too_long_for_oaep_reads_back_through_pkcs1(sb: Sandbox) -> None:
    # A 232-byte email cannot be OAEP-encrypted (214 bytes at most): the answer carries it
    # under PKCS#1 v1.5, which the default decryption falls back to.
    email = "a" * 220 + "@example.com"
    contact = {**HK_CREATE_REQUEST["contact"], "email": email}
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb, contact=contact))
        query = {"sp_appid": HK_CREATE_REQUEST["sp_appid"], "sp_mchid": sb.credentials.mchid}
        fetched = await hk_merchants.get_submerchant(client, created.sub_mchid, **query)
        with pytest.raises(DecryptionError) as caught:
            await hk_merchants.get_submerchant(
                client, created.sub_mchid, padding=Padding.OAEP, **query
            )
    assert fetched.contact is not None
    assert fetched.contact.email == email
    assert fetched.contact.name == contact["name"]
    assert "contact.email" in str(caught.value)
    assert email not in str(caught.value)


async def test_server_side_business_rule_is_a_bad_request(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(BadRequestError) as caught:
            await hk_merchants.create_submerchant(client, application(sb, sp_mchid="1234567890"))
    assert caught.value.code == "INVALID_REQUEST"
    assert len(calls(sb, PATH)) == 1


async def test_modify_then_read_back(sb_any_mode: Sandbox) -> None:
    sb = sb_any_mode
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb))
        changes = application(sb, sub_mchid=created.sub_mchid, shortname="New Name")
        del changes["contact"]  # optional on modify
        modified = await hk_merchants.modify_submerchant(client, changes)
        fetched = await hk_merchants.get_submerchant(
            client,
            created.sub_mchid,
            sp_appid=HK_CREATE_REQUEST["sp_appid"],
            sp_mchid=sb.credentials.mchid,
        )
    assert modified.sub_mchid == created.sub_mchid
    assert fetched.shortname == "New Name"
    assert fetched.contact is not None
    assert fetched.contact.name == HK_CREATE_REQUEST["contact"]["name"]  # kept


async def test_modify_with_new_contact_is_encrypted_again(sb: Sandbox) -> None:
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb))
        contact = {"name": "Mary Wong", "phone": "+85290000000", "email": "mary@example.com"}
        await hk_merchants.modify_submerchant(
            client, application(sb, sub_mchid=created.sub_mchid, contact=contact)
        )
        fetched = await hk_merchants.get_submerchant(
            client,
            created.sub_mchid,
            sp_appid=HK_CREATE_REQUEST["sp_appid"],
            sp_mchid=sb.credentials.mchid,
        )
    put = next(r for r in calls(sb, PATH) if r.method == "PUT")
    assert b"Mary Wong" not in put.body
    assert put.headers["Wechatpay-Serial"] == sb.wechatpay_serial
    assert fetched.contact is not None
    assert fetched.contact.name == "Mary Wong"


async def test_modify_unknown_sub_merchant_is_not_found(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(NotFoundError):
            await hk_merchants.modify_submerchant(client, application(sb, sub_mchid="1999999999"))
    assert len(calls(sb, PATH)) == 1


async def test_get_errors(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(NotFoundError):
            await hk_merchants.get_submerchant(
                client, "1999999999", sp_appid="wx1", sp_mchid=sb.credentials.mchid
            )
        created = await hk_merchants.create_submerchant(client, application(sb))
        with pytest.raises(BadRequestError) as caught:
            await hk_merchants.get_submerchant(
                client, created.sub_mchid, sp_appid="wxOTHER", sp_mchid=sb.credentials.mchid
            )
    assert caught.value.code == "INVALID_REQUEST"


async def test_get_retries_a_system_error(sb: Sandbox) -> None:
    sb.faults.queue(f"GET {PATH}/{{sub_mchid}}", "system_error")
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, application(sb))
        fetched = await hk_merchants.get_submerchant(
            client,
            created.sub_mchid,
            sp_appid=HK_CREATE_REQUEST["sp_appid"],
            sp_mchid=sb.credentials.mchid,
        )
    assert fetched.sub_mchid == created.sub_mchid
    assert [r.status for r in calls(sb, f"{PATH}/")] == [500, 200]


async def test_invalid_input_sends_nothing(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError):
            await hk_merchants.create_submerchant(client, application(sb, merchant_type="SHOP"))
        with pytest.raises(ValidationError):
            await hk_merchants.modify_submerchant(client, application(sb))  # no sub_mchid
        with pytest.raises(ValidationError):
            await hk_merchants.get_submerchant(client, "", sp_appid="wx1", sp_mchid="1")
    assert sb.requests == []


async def test_sent_body_matches_the_application(sb: Sandbox) -> None:
    async with sb.client() as client:
        await hk_merchants.create_submerchant(client, application(sb))
    (sent,) = calls(sb, PATH)
    body = json.loads(sent.body)
    assert body["contact"].keys() == {"name", "phone", "email"}
    del body["contact"]
    expected = application(sb)
    del expected["contact"]
    assert body == expected


async def test_unknown_media_id_is_a_param_error_with_detail(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(BadRequestError) as caught:
            await hk_merchants.create_submerchant(
                client, application(sb, registration_certificate_copy="never-uploaded")
            )
    assert caught.value.code == "PARAM_ERROR"
    assert caught.value.detail is not None
    assert "registration_certificate_copy" in str(caught.value.detail.get("field"))
    assert len(calls(sb, PATH)) == 1


async def test_uploaded_media_id_is_accepted(sb: Sandbox) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    async with sb.client() as client:
        upload = await media.upload_image(client, "certificate.png", png)
        photos = await media.upload_image(client, "store.png", png)
        business = {**HK_CREATE_REQUEST["business"], "store_photos": [photos.media_id]}
        created = await hk_merchants.create_submerchant(
            client,
            application(sb, registration_certificate_copy=upload.media_id, business=business),
        )
    sent = json.loads(calls(sb, PATH)[0].body)
    assert json.loads(sent["business"]["store_photos"]) == [photos.media_id]
    assert created.sub_mchid


async def test_a_wrong_merchant_key_is_rejected_once(sb: Sandbox, rsa_key_pem: bytes) -> None:
    good = sb.credentials
    impostor = MerchantCredentials(
        mchid=good.mchid,
        serial_no=good.serial_no,
        private_key=rsa_key_pem,
        apiv3_key=good.apiv3_key,
    )
    async with sb.client(credentials=impostor) as client:
        with pytest.raises(SignatureRejectedError) as caught:
            await hk_merchants.create_submerchant(client, application(sb))
    assert caught.value.status == 401
    assert caught.value.code == "SIGN_ERROR"
    assert len(calls(sb, PATH)) == 1
    assert sb.submerchant_count == 0
