"""HK onboarding without a server: validation, preparation, encryption, secrecy."""

from __future__ import annotations

import json
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from wxpay_async import CertificateTrust, ValidationError, WxPayClient
from wxpay_async.crypto import Padding, decrypt_field
from wxpay_async.products import hk_merchants

from .conftest import PUBLIC_KEY_ID, Recorder
from .seeds import HK_CREATE_REQUEST


def application(**changes: Any) -> dict[str, Any]:
    data = deepcopy(HK_CREATE_REQUEST)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return data


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"contact__name": "x" * 65}, "contact.name", "at most 64 bytes"),
        ({"contact__name": "陈" * 22}, "contact.name", "at most 64 bytes"),  # 66 bytes
        ({"contact__phone": "1" * 33}, "contact.phone", "at most 32 bytes"),
        ({"contact__email": "not-an-email"}, "contact.email", "email address"),
        ({"contact__email": ...}, "contact.email", "is required"),
        ({"contact": ...}, "contact", "is required"),
        ({"sp_appid": "x" * 33}, "sp_appid", "at most 32"),
        ({"name": ""}, "name", "must not be empty"),
        ({"shortname": "s" * 65}, "shortname", "at most 64"),
        ({"business_category": "343"}, "business_category", "integer"),
        ({"business_category": 0}, "business_category", "positive"),
        ({"merchant_country_code": "HK"}, "merchant_country_code", "3-digit"),
        ({"merchant_type": "COMPANY"}, "merchant_type", "ENTERPRISE, INDIVIDUAL"),
        ({"registration_certificate_number": ...}, "registration_certificate_number", "required"),
        ({"registration_certificate_date": "2022/06/03"}, "registration_certificate_date", "YYYY"),
        ({"registration_certificate_date": "2022-02-30"}, "registration_certificate_date", "date"),
        ({"business__business_type": "MAIL"}, "business.business_type", "ONLINE, OFFLINE, BOTH"),
        ({"business__mcc": "53444"}, "business.mcc", "4"),
        ({"business__store_photos": [""]}, "business.store_photos[0]", "must not be empty"),
        ({"business__store_photos": "not json"}, "business.store_photos", "media IDs"),
        ({"channel_id": "c" * 21}, "channel_id", "at most 20"),
        ({"principal": {"name": "Ann"}}, "principal", "only for INDIVIDUAL"),
        ({"merchant_type": "INDIVIDUAL"}, "director", "only for ENTERPRISE"),
        ({"shortname": "Shop 😀"}, "shortname", "Basic Multilingual Plane"),
        ({"office_phone": "call us"}, "office_phone", "phone number"),
        ({"contact__phone": "+852 abc"}, "contact.phone", "phone number"),
        ({"contact__email": "tom@localhost"}, "contact.email", "email address"),
        # What could not be read back from a PKCS#1 answer (decrypt_field) is not sent either.
        ({"contact__name": "陳\x00大文"}, "contact.name", "printable text"),
        ({"contact__name": "Tom\u202eLee"}, "contact.name", "printable text"),  # bidi override
        ({"contact__email": "tom\x7f@example.com"}, "contact.email", "printable text"),
        ({"contact__phone": "+852\u2028123"}, "contact.phone", "printable text"),
        ({"unknown_field": 1}, "unknown_field", "is not a field"),
    ],
)
async def test_invalid_application_raises_before_sending(
    quiet_client: tuple[WxPayClient, Recorder], changes: dict[str, Any], field: str, rule: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.create_submerchant(client, application(**changes))
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert rec.requests == []


@pytest.mark.parametrize("key", ["with-dash-0001", "", "k" * 65, "ключ"])
async def test_bad_idempotency_key_is_refused_before_sending(
    quiet_client: tuple[WxPayClient, Recorder], key: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.create_submerchant(client, application(), idempotency_key=key)
    assert caught.value.field == "idempotency_key"
    assert rec.requests == []


async def test_contact_over_the_padding_limit_is_refused(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    # 256 bytes pass the model rule but exceed what OAEP (214) and PKCS#1 (245) can encrypt.
    client, rec = quiet_client
    long_email = "a" * 246 + "@example.c"
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.create_submerchant(client, application(contact__email=long_email))
    assert caught.value.field == "contact.email"
    assert "245 bytes" in caught.value.rule
    assert long_email not in str(caught.value)
    assert rec.requests == []


async def test_prepare_create_encrypts_contact_with_pkcs1_by_default(
    make_client: Callable[..., WxPayClient], platform_key: rsa.RSAPrivateKey
) -> None:
    async with make_client() as client:
        prepared = await hk_merchants.prepare_create(client, application())
    body = json.loads(prepared.body)
    contact = HK_CREATE_REQUEST["contact"]
    for name in ("name", "phone", "email"):
        assert body["contact"][name] != contact[name]
        assert decrypt_field(platform_key, body["contact"][name], Padding.PKCS1V15) == contact[name]
    assert prepared.wechatpay_serial == PUBLIC_KEY_ID
    assert len(prepared.idempotency_key) == 32
    assert prepared.headers == {
        "Idempotency-Key": prepared.idempotency_key,
        "Wechatpay-Serial": PUBLIC_KEY_ID,
    }
    # Everything else goes out as given.
    assert body["business_category"] == 343
    assert body["director"] == {"name": "Tom", "number": "1234567890"}


async def test_padding_is_selectable_per_call_and_module_wide(
    make_client: Callable[..., WxPayClient],
    platform_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = HK_CREATE_REQUEST["contact"]["name"]
    async with make_client() as client:
        per_call = await hk_merchants.prepare_create(client, application(), padding=Padding.OAEP)
        monkeypatch.setattr(hk_merchants, "REQUEST_PADDING", Padding.OAEP)
        module_wide = await hk_merchants.prepare_create(client, application())
    for prepared in (per_call, module_wide):
        ciphertext = json.loads(prepared.body)["contact"]["name"]
        assert decrypt_field(platform_key, ciphertext, Padding.OAEP) == name


async def test_caller_key_is_kept_and_store_photos_list_is_encoded(
    make_client: Callable[..., WxPayClient],
) -> None:
    photos = ["media-1", "media-2"]
    async with make_client() as client:
        prepared = await hk_merchants.prepare_create(
            client, application(business__store_photos=photos), idempotency_key="job42ABC"
        )
    assert prepared.idempotency_key == "job42ABC"
    sent = json.loads(prepared.body)["business"]["store_photos"]
    assert isinstance(sent, str)
    assert json.loads(sent) == photos


def test_store_photos_accepts_the_encoded_string_and_the_list_alike() -> None:
    as_list = hk_merchants.Business(business_type="ONLINE", store_photos=["a", "b"])  # type: ignore[arg-type]
    as_text = hk_merchants.Business(business_type="ONLINE", store_photos='["a", "b"]')  # type: ignore[arg-type]
    assert json.loads(as_list.store_photos or "") == json.loads(as_text.store_photos or "")


async def test_model_and_mapping_prepare_the_same_fields(
    make_client: Callable[..., WxPayClient], platform_key: rsa.RSAPrivateKey
) -> None:
    model = hk_merchants.SubMerchantApplication(
        sp_appid="wx82ec4jy334ner1",
        sp_mchid="2422128905",
        name="testname",
        shortname="shortname",
        office_phone="13680534111",
        contact=hk_merchants.Contact(
            name="Tom Chan", phone="+85261234567", email="tom@example.com"
        ),
        business_category=343,
        merchant_country_code="344",
        merchant_type=hk_merchants.MerchantType.ENTERPRISE,
        registration_certificate_number="519723407213085723",
        registration_certificate_date="2022-06-03",
        settlement_bank_number="559304578245298347923856",
        business=hk_merchants.Business(
            business_type=hk_merchants.BusinessType.ONLINE, mcc="5344", mini_program="flowerplus"
        ),
        director=hk_merchants.Person(name="Tom", number="1234567890"),
    )
    async with make_client() as client:
        from_model = json.loads((await hk_merchants.prepare_create(client, model)).body)
        from_dict = json.loads((await hk_merchants.prepare_create(client, application())).body)
    for body in (from_model, from_dict):
        body["contact"] = {
            k: decrypt_field(platform_key, v, Padding.PKCS1V15) for k, v in body["contact"].items()
        }
    assert from_model == from_dict == HK_CREATE_REQUEST


def test_secrets_stay_out_of_reprs() -> None:
    contact = hk_merchants.Contact(name="Tom Chan", phone="+85261234567", email="tom@example.com")
    assert "Tom Chan" not in repr(contact)
    assert "+85261234567" not in repr(contact)
    info = hk_merchants.ContactInfo(name="Tom Chan", phone="+85261234567", email="t@e.com")
    assert "Tom Chan" not in repr(info)
    prepared = hk_merchants.PreparedCreate(
        idempotency_key="abc123", body=b'{"name":"Secret Co"}', wechatpay_serial="S1"
    )
    assert "Secret Co" not in repr(prepared)
    assert "20 bytes" in repr(prepared)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"idempotency_key": "a-b"}, "idempotency_key"),
        ({"body": b""}, "body"),
        ({"wechatpay_serial": ""}, "wechatpay_serial"),
    ],
)
def test_prepared_create_checks_journaled_values(fields: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {"idempotency_key": "k1", "body": b"{}", "wechatpay_serial": "S1"}
    values.update(fields)
    with pytest.raises(ValidationError) as caught:
        hk_merchants.PreparedCreate(**values)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sub_mchid": ...}, "sub_mchid"),
        ({"contact": {"name": "Tom"}}, "contact.phone"),  # all three or none
        ({"business": ...}, "business"),
    ],
)
async def test_modify_validation(
    quiet_client: tuple[WxPayClient, Recorder], changes: dict[str, Any], field: str
) -> None:
    client, rec = quiet_client
    data = (
        application(**changes)
        if "sub_mchid" in changes
        else application(sub_mchid="1900000109", **changes)
    )
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.modify_submerchant(client, data)
    assert caught.value.field == field
    assert rec.requests == []


def test_modify_accepts_no_contact_and_no_registration() -> None:
    model = hk_merchants.SubMerchantModification(
        sp_appid="wx82ec4jy334ner1",
        sp_mchid="2422128905",
        sub_mchid="1900000109",
        name="testname",
        shortname="shortname",
        office_phone="13680534111",
        business_category=343,
        merchant_country_code="344",
        merchant_type=hk_merchants.MerchantType.INDIVIDUAL,
        business=hk_merchants.Business(business_type=hk_merchants.BusinessType.OFFLINE),
        principal=hk_merchants.Person(name="Ann"),
    )
    assert model.contact is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sub_mchid": "", "sp_appid": "wx1", "sp_mchid": "1"}, "sub_mchid"),
        ({"sub_mchid": "1", "sp_appid": "w" * 33, "sp_mchid": "1"}, "sp_appid"),
        ({"sub_mchid": "1", "sp_appid": "wx1", "sp_mchid": 1}, "sp_mchid"),
    ],
)
async def test_get_validation(
    quiet_client: tuple[WxPayClient, Recorder], kwargs: dict[str, Any], field: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.get_submerchant(client, **kwargs)
    assert caught.value.field == field
    assert rec.requests == []


async def test_unknown_padding_is_a_validation_error(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await hk_merchants.create_submerchant(client, application(), padding="RSA")  # type: ignore[arg-type]
    assert caught.value.field == "padding"
    assert rec.requests == []


def _model_fields(**changes: Any) -> dict[str, Any]:
    """The seed application as model keyword arguments (nested parts as models)."""
    data = application()
    data["contact"] = hk_merchants.Contact(**data["contact"])
    data["business"] = hk_merchants.Business(**data["business"])
    data["director"] = hk_merchants.Person(**data["director"])
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"merchant_type": "COMPANY"}, "merchant_type", "ENTERPRISE, INDIVIDUAL"),
        ({"business": {"business_type": "ONLINE", "bogus": 1}}, "business", "must be a Business"),
        ({"contact": {"name": "Tom"}}, "contact", "must be a Contact"),
        ({"director": {"name": "Tom"}}, "director", "must be a Person"),
    ],
)
def test_a_model_built_directly_checks_enum_and_nested_types(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    # The converter checks these for mappings; a directly built model must not let them through
    # to the wire unchecked.
    with pytest.raises(ValidationError) as caught:
        hk_merchants.SubMerchantApplication(**_model_fields(**changes))
    assert caught.value.field == field
    assert rule in caught.value.rule
    with pytest.raises(ValidationError) as caught:
        hk_merchants.Business(business_type="MAIL")  # type: ignore[arg-type]
    assert caught.value.field == "business_type"


def test_a_model_built_directly_accepts_enum_values_as_text() -> None:
    model = hk_merchants.SubMerchantApplication(**_model_fields(merchant_type="ENTERPRISE"))
    assert model.merchant_type == hk_merchants.MerchantType.ENTERPRISE


@pytest.mark.parametrize(("padding", "limit"), [(Padding.PKCS1V15, 245), (Padding.OAEP, 214)])
async def test_a_plaintext_too_long_for_rsa_is_refused_before_any_certificate_download(
    recorder: tuple[Recorder, str],
    make_client: Callable[..., WxPayClient],
    padding: Padding,
    limit: int,
) -> None:
    """The model allows a 256-byte e-mail; RSA-2048 does not (spec B7). Refused before the
    key is fetched: a certificate trust with no certificate yet downloads nothing."""
    rec, url = recorder
    email = "a" * (limit - len("@example.com") + 1) + "@example.com"
    async with make_client(url, trust=CertificateTrust()) as client:
        with pytest.raises(ValidationError) as caught:
            await hk_merchants.prepare_create(
                client, application(contact__email=email), padding=padding
            )
    assert caught.value.field == "contact.email"
    assert f"at most {limit} bytes" in caught.value.rule
    assert email not in str(caught.value)
    assert rec.requests == []
