"""HK onboarding against the sandbox with the real client: create, query, modify, idempotency."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.sandbox.helpers import (
    HK_CREATE,
    HK_GET,
    HK_MODIFY,
    document,
    hk_application,
    send_json,
    upload,
)
from wxpay_async import BadRequestError, Endpoint, NotFoundError, WxPayClient
from wxpay_async.crypto import Padding, decrypt_field, encrypt_field
from wxpay_async.sandbox import DEFAULT_SP_APPID, SANDBOX_MCHID, Sandbox


async def test_create_then_query_returns_contact_encrypted_to_the_merchant(
    sb: Sandbox, client: WxPayClient
) -> None:
    raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="key1")
    created = document(raw)
    assert created["verification_status"] == "Under Review"
    assert created["sub_mchid"] in sb.state.submerchants

    raw = await client.send(
        HK_GET,
        path_params={"sub_mchid": created["sub_mchid"]},
        query={"sp_appid": DEFAULT_SP_APPID, "sp_mchid": SANDBOX_MCHID},
    )
    found = document(raw)
    assert found["name"] == "Fruit Store Limited"
    assert found["business"] == {
        "business_type": "ONLINE",
        "mcc": "5344",
        "mini_program": "flowerplus",
    }
    key = sb.identity.merchant_key
    contact = {k: decrypt_field(key, v, Padding.OAEP) for k, v in found["contact"].items()}
    assert contact == hk_application()["contact"]


@pytest.mark.parametrize("padding", [Padding.OAEP, Padding.PKCS1V15])
async def test_contact_is_accepted_with_either_padding(
    sb: Sandbox, client: WxPayClient, padding: Padding
) -> None:
    endpoint = Endpoint(
        name="hk.create",
        method="POST",
        host="mainland",
        path="/hk/v3/merchants",
        idempotency_key=True,
        encrypted_fields=HK_CREATE.encrypted_fields,
        padding=padding,
    )
    raw = await send_json(client, endpoint, hk_application(), idempotency_key="pad" + padding)
    sub = sb.state.submerchants[document(raw)["sub_mchid"]]
    assert sub.contact["email"] == "tm@example.com"


async def test_same_key_and_body_replays_without_a_second_sub_merchant(
    sb: Sandbox, client: WxPayClient
) -> None:
    body, headers = await client.prepare_json(HK_CREATE, hk_application())
    first = await client.send(HK_CREATE, body=body, headers=headers, idempotency_key="K1")
    second = await client.send(HK_CREATE, body=body, headers=headers, idempotency_key="K1")
    assert first.body == second.body
    assert sb.created_count("K1") == 1
    assert sb.submerchant_count == 1


async def test_same_key_different_body_is_invalid_request(sb: Sandbox, client: WxPayClient) -> None:
    await send_json(client, HK_CREATE, hk_application(), idempotency_key="K2")
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, HK_CREATE, hk_application(name="Other"), idempotency_key="K2")
    assert caught.value.code == "INVALID_REQUEST"
    assert sb.submerchant_count == 1


async def test_simultaneous_retries_under_one_key_create_one_sub_merchant(
    sb: Sandbox, client: WxPayClient
) -> None:
    body, headers = await client.prepare_json(HK_CREATE, hk_application())
    answers = await asyncio.gather(
        *(
            client.send(HK_CREATE, body=body, headers=headers, idempotency_key="SAME")
            for _ in range(12)
        )
    )
    assert {raw.status for raw in answers} == {200}
    assert len({raw.body for raw in answers}) == 1
    assert sb.created_count("SAME") == 1
    assert sb.submerchant_count == 1


async def test_simultaneous_creates_under_distinct_keys_are_distinct(
    sb: Sandbox, client: WxPayClient
) -> None:
    answers = await asyncio.gather(
        *(
            send_json(client, HK_CREATE, hk_application(), idempotency_key=f"many{i}")
            for i in range(12)
        )
    )
    created = {document(raw)["sub_mchid"] for raw in answers}
    assert len(created) == sb.submerchant_count == 12
    assert all(sb.created_count(f"many{i}") == 1 for i in range(12))


async def test_re_encrypting_the_same_fields_is_a_different_body(
    sb: Sandbox, client: WxPayClient
) -> None:
    # RSA padding is randomized: preparing twice yields different bytes, which WeChat (and the
    # sandbox) treat as a different request under the same key.
    await send_json(client, HK_CREATE, hk_application(), idempotency_key="K3")
    with pytest.raises(BadRequestError, match="different request body"):
        await send_json(client, HK_CREATE, hk_application(), idempotency_key="K3")


async def test_drop_after_create_then_retry_creates_one_sub_merchant(
    sb: Sandbox, client: WxPayClient
) -> None:
    sb.faults.queue("POST /hk/v3/merchants", "drop_after")
    raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="dropped1")
    assert document(raw)["sub_mchid"] in sb.state.submerchants
    assert [r.fault for r in sb.requests if r.method == "POST"] == ["drop_after", None]
    assert sb.created_count("dropped1") == 1
    assert sb.submerchant_count == 1


async def test_idempotency_key_is_required_and_checked(sb: Sandbox, client: WxPayClient) -> None:
    body, headers = await client.prepare_json(HK_CREATE, hk_application())
    plain = Endpoint(name="hk.create", method="POST", host="mainland", path="/hk/v3/merchants")
    with pytest.raises(BadRequestError) as caught:
        await client.send(plain, body=body, headers=headers)
    assert caught.value.detail == {
        "field": "Idempotency-Key",
        "issue": "is required by this API",
        "location": "header",
    }
    with pytest.raises(BadRequestError, match="letters and digits"):
        await client.send(plain, body=body, headers={**headers, "Idempotency-Key": "a-b"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 129}, "/name"),
        ({"merchant_type": "COMPANY"}, "/merchant_type"),
        ({"business_category": "343"}, "/business_category"),
        ({"registration_certificate_date": "2030-02-30"}, "/registration_certificate_date"),
        ({"registration_certificate_date": "16/10/2030"}, "/registration_certificate_date"),
        ({"business": {"mcc": "5344"}}, "/business/business_type"),
        ({"business": {"business_type": "ONLINE", "mcc": "53"}}, "/business/mcc"),
        ({"merchant_country_code": "HKG"}, "/merchant_country_code"),
        ({"merchant_type": "INDIVIDUAL"}, "/director"),
        ({"shortname": "Shop \U0001f600"}, "/shortname"),
    ],
)
async def test_invalid_bodies_name_the_field(
    sb: Sandbox, client: WxPayClient, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, HK_CREATE, hk_application(**changes), idempotency_key="bad1")
    assert caught.value.code == "PARAM_ERROR"
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == field
    assert caught.value.detail["location"] == "body"
    assert sb.submerchant_count == 0


async def test_unconfirmed_lengths_and_spaced_phones_are_not_refused(
    sb: Sandbox, client: WxPayClient
) -> None:
    # Spec A4.1 gives no length for business.* / director.*: a long address must pass.
    body = hk_application(
        office_phone="+852 2888-6888",
        business={"business_type": "BOTH", "store_address": "Shop 1, " * 60},
        director={"name": "Chan " * 40, "number": "A123456(7)"},
    )
    raw = await send_json(client, HK_CREATE, body, idempotency_key="lenient1")
    stored = sb.state.submerchants[document(raw)["sub_mchid"]]
    assert stored.data["business"]["store_address"] == "Shop 1, " * 60


async def test_missing_required_field(sb: Sandbox, client: WxPayClient) -> None:
    body = hk_application()
    del body["registration_certificate_number"]
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, HK_CREATE, body, idempotency_key="bad2")
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/registration_certificate_number"


async def test_contact_plaintext_rules_apply_after_decryption(
    sb: Sandbox, client: WxPayClient
) -> None:
    body = hk_application(contact={"name": "A", "phone": "+85291234567", "email": "not-an-email"})
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, HK_CREATE, body, idempotency_key="bad3")
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/contact/email"
    assert "not-an-email" not in str(caught.value)  # decrypted values are never echoed


async def refused_contact(
    client: WxPayClient, contact: dict[str, str], serial: str, key: str
) -> BadRequestError:
    """Send an onboarding whose ``contact`` is given as is (encrypted or not): its refusal."""
    body = json.dumps(hk_application(contact=contact)).encode()
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            HK_CREATE, body=body, headers={"Wechatpay-Serial": serial}, idempotency_key=key
        )
    assert caught.value.detail is not None
    return caught.value


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"name": "QUJD", "phone": "QUJD", "email": "QUJD"}, "/contact/name"),  # Base64-shaped
        ({"name": "N", "phone": "P", "email": "t@e.hk"}, "/contact/email"),
    ],
)
async def test_unencrypted_contact_is_refused_and_not_echoed(
    sb: Sandbox, client: WxPayClient, contact: dict[str, str], field: str
) -> None:
    serial, _key = await client.trust.encryption_key()
    error = await refused_contact(client, contact, serial, "plain" + str(len(field)))
    assert error.detail is not None
    assert error.detail["field"] == field
    assert "value" not in error.detail
    assert all(value not in str(error) for value in contact.values() if len(value) > 1)


async def test_wechatpay_serial_must_name_the_encryption_key(
    sb: Sandbox, client: WxPayClient
) -> None:
    body, _ = await client.prepare_json(HK_CREATE, hk_application())
    with pytest.raises(BadRequestError) as missing:
        await client.send(HK_CREATE, body=body, idempotency_key="serial1")
    assert missing.value.detail is not None
    assert missing.value.detail["field"] == "Wechatpay-Serial"
    with pytest.raises(BadRequestError) as unknown:
        await client.send(
            HK_CREATE,
            body=body,
            headers={"Wechatpay-Serial": "PUB_KEY_ID_0000000000000000000000000000"},
            idempotency_key="serial2",
        )
    assert unknown.value.detail is not None
    assert unknown.value.detail["location"] == "header"


async def test_fields_encrypted_with_another_key_are_refused(
    sb: Sandbox, client: WxPayClient
) -> None:
    # Encrypt to the merchant's own key but claim the platform key's serial.
    serial, _ = await client.trust.encryption_key()
    wrong = sb.identity.merchant_public_key
    contact = {
        name: encrypt_field(wrong, value, Padding.OAEP)
        for name, value in hk_application()["contact"].items()
    }
    body = json.dumps(hk_application(contact=contact)).encode()
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            HK_CREATE, body=body, headers={"Wechatpay-Serial": serial}, idempotency_key="wrongkey"
        )
    assert caught.value.detail is not None
    assert caught.value.detail["field"].startswith("/contact/")
    assert sb.submerchant_count == 0


async def test_fields_encrypted_in_the_other_key_mode_are_refused(
    sb: Sandbox, client: WxPayClient
) -> None:
    """Spec B6: one request must not mix modes. A public-key merchant's fields encrypted with
    a platform certificate (or the reverse) are refused, though the sandbox holds both keys."""
    identity = sb.identity
    if sb.key_mode == "public_key":
        certificate = identity.current_certificate
        serial, key = certificate.serial_no, certificate.private_key.public_key()
    else:
        serial, key = identity.pubkey_id, identity.pubkey_key.public_key()
    contact = {
        name: encrypt_field(key, value, Padding.OAEP)
        for name, value in hk_application()["contact"].items()
    }
    error = await refused_contact(client, contact, serial, "mode1")
    assert error.detail is not None
    assert error.detail["field"] == "Wechatpay-Serial"
    assert "mode" in error.detail["issue"]
    assert sb.submerchant_count == 0


async def test_contact_fields_must_share_one_padding(sb: Sandbox, client: WxPayClient) -> None:
    serial, key = await client.trust.encryption_key()
    plain = hk_application()["contact"]
    contact = {
        "name": encrypt_field(key, plain["name"], Padding.OAEP),
        "phone": encrypt_field(key, plain["phone"], Padding.PKCS1V15),
        "email": encrypt_field(key, plain["email"], Padding.PKCS1V15),
    }
    error = await refused_contact(client, contact, serial, "mixed1")
    assert error.detail is not None
    assert error.detail["field"] == "/contact/phone"
    assert sb.submerchant_count == 0


async def test_sp_mchid_must_be_the_caller(sb: Sandbox, client: WxPayClient) -> None:
    with pytest.raises(BadRequestError, match="calling institution"):
        await send_json(
            client, HK_CREATE, hk_application(sp_mchid="1230000109"), idempotency_key="spm"
        )


async def test_registration_copy_must_be_an_uploaded_media_id(
    sb: Sandbox, client: WxPayClient
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await send_json(
            client,
            HK_CREATE,
            hk_application(registration_certificate_copy="never-uploaded"),
            idempotency_key="media1",
        )
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/registration_certificate_copy"
    media_id = document(await upload(client))["media_id"]
    raw = await send_json(
        client,
        HK_CREATE,
        hk_application(registration_certificate_copy=media_id),
        idempotency_key="media2",
    )
    assert raw.status == 200


async def test_store_photos_is_a_json_array_string(sb: Sandbox, client: WxPayClient) -> None:
    media_id = document(await upload(client))["media_id"]
    ok = hk_application(
        business={"business_type": "OFFLINE", "store_photos": json.dumps([media_id])}
    )
    assert (await send_json(client, HK_CREATE, ok, idempotency_key="photos1")).status == 200
    unknown = hk_application(business={"business_type": "OFFLINE", "store_photos": '["nope"]'})
    with pytest.raises(BadRequestError, match="media_id"):
        await send_json(client, HK_CREATE, unknown, idempotency_key="photos3")
    bad = hk_application(business={"business_type": "OFFLINE", "store_photos": "id1,id2"})
    with pytest.raises(BadRequestError) as caught:
        await send_json(client, HK_CREATE, bad, idempotency_key="photos2")
    assert caught.value.detail is not None
    assert caught.value.detail["field"] == "/business/store_photos"


async def test_modify_updates_what_query_returns(sb: Sandbox, client: WxPayClient) -> None:
    sub_mchid = document(
        await send_json(client, HK_CREATE, hk_application(), idempotency_key="m1")
    )["sub_mchid"]
    changes = hk_application(
        sub_mchid=sub_mchid,
        shortname="Fruit HK",
        contact={"name": "Wong", "phone": "+85290000000", "email": "wong@example.com"},
    )
    raw = await send_json(client, HK_MODIFY, changes)
    assert document(raw) == {"sub_mchid": sub_mchid}
    found = document(
        await client.send(
            HK_GET,
            path_params={"sub_mchid": sub_mchid},
            query={"sp_appid": DEFAULT_SP_APPID, "sp_mchid": SANDBOX_MCHID},
        )
    )
    assert found["shortname"] == "Fruit HK"
    email = decrypt_field(sb.identity.merchant_key, found["contact"]["email"])
    assert email == "wong@example.com"


async def test_modify_unknown_sub_merchant_is_404(client: WxPayClient) -> None:
    with pytest.raises(NotFoundError):
        await send_json(client, HK_MODIFY, hk_application(sub_mchid="1999999999"))


async def test_query_needs_both_query_parameters(client: WxPayClient) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.send(
            HK_GET, path_params={"sub_mchid": "1900000110"}, query={"sp_appid": DEFAULT_SP_APPID}
        )
    assert caught.value.detail == {
        "field": "sp_mchid",
        "issue": "缺少必填参数 (required)",
        "location": "query",
    }
    with pytest.raises(NotFoundError):
        await client.send(
            HK_GET,
            path_params={"sub_mchid": "1999999999"},
            query={"sp_appid": DEFAULT_SP_APPID, "sp_mchid": SANDBOX_MCHID},
        )


async def test_sub_merchant_is_approved_on_the_simulated_clock() -> None:
    async with (
        Sandbox.start(time_scale=0.0001, submerchant_review_seconds=100) as sb,
        sb.client() as client,
    ):
        raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="clock1")
        sub = sb.state.submerchants[document(raw)["sub_mchid"]]
        assert sub.verification_status == "Under Review"
        await asyncio.sleep(0.03)
        assert sub.verification_status == "Approved"
