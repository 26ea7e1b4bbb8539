"""Product inputs refused before sending: models built directly, digits, text, URLs, dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from wxpay_async import ValidationError, WxPayClient, converter
from wxpay_async.products import cloudbase, h5_permission, hk_merchants
from wxpay_async.products import payscore_permissions as ps

from .conftest import Recorder
from .test_hk_merchants_offline import _model_fields, application

ARABIC_DIGITS = "٣٤٤"  # "344" in Arabic-Indic digits: str.isdigit() and \d accept them


async def test_a_model_built_directly_with_a_required_field_left_none_is_refused(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    h5 = h5_permission.H5ApplicationRequest(sub_mchid=None, domains=None, website_url=None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        await h5_permission.create_application(client, h5)
    assert (info.value.field, info.value.rule) == ("sub_mchid", "is required")
    terminate = ps.TerminateRequest(service_id="500001", sub_mchid="1900000109", reason=None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        await ps.terminate_by_authorization_code(client, "auth-code-1", terminate)
    assert info.value.field == "reason"
    assert rec.requests == []


async def test_a_required_field_left_none_is_found_in_a_nested_model(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    business = hk_merchants.Business(**{**application()["business"], "business_type": None})
    model = hk_merchants.SubMerchantApplication(**_model_fields(business=business))
    with pytest.raises(ValidationError) as info:
        await hk_merchants.create_submerchant(client, model)
    assert info.value.field == "business.business_type"
    # ... and inside a mapping too (the nested model arrives already built).
    mapping = {**application(), "business": business}
    with pytest.raises(ValidationError) as info:
        await hk_merchants.create_submerchant(client, mapping)
    assert info.value.field == "business.business_type"
    assert rec.requests == []


def _unlaunched_site() -> h5_permission.H5ApplicationRequest:
    return h5_permission.H5ApplicationRequest(
        sub_mchid="100001",
        domains=["qq.com"],
        website_url="https://qq.com",
        website_state="UN_LAUNCHED",  # type: ignore[arg-type]
        transaction_limit_type="UN_LAUNCHED_WEBSITE_LIMIT",  # type: ignore[arg-type]
        website_homepage_pics=["m1"],
        website_business_page_pics=["m2"],
    )


async def test_a_models_list_changed_in_place_after_it_was_built_is_checked_again(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    """Frozen models hold lists: what was valid at construction is checked again when sent."""
    client, rec = quiet_client
    bad_domain = _unlaunched_site()
    bad_domain.domains.append("https://evil.example/x")
    with pytest.raises(ValidationError) as info:
        await h5_permission.create_application(client, bad_domain)
    assert info.value.field == "domains[1]"
    no_screenshots = _unlaunched_site()
    no_screenshots.website_homepage_pics.clear()  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as info:
        await h5_permission.create_application(client, no_screenshots)
    assert info.value.field == "website_homepage_pics"
    assert rec.requests == []


def test_a_domain_application_may_omit_sub_mchid() -> None:
    request = converter.structure(
        {"domains": ["qq.com"], "website_url": "https://qq.com", "out_applyment_id": "123456"},
        h5_permission.H5DomainApplicationRequest,
    )
    assert request.sub_mchid is None
    assert "sub_mchid" not in converter.unstructure(request)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"merchant_country_code": ARABIC_DIGITS}, "merchant_country_code"),
        ({"business__mcc": "٥٣٤٤"}, "business.mcc"),
        ({"registration_certificate_date": "٢٠٢٢-06-03"}, "registration_certificate_date"),
        ({"registration_certificate_date": ["2022-06-03"]}, "registration_certificate_date"),
        ({"business__store_photos": ["\U0001f600id"]}, "business.store_photos[0]"),
        ({"business__store_photos": [b"id"]}, "business.store_photos"),
        ({"contact__email": "pii\ud800@example.com"}, "contact.email"),
        ({"name": "Acme \udfff"}, "name"),
    ],
)
async def test_hk_fields_refuse_what_the_wire_cannot_carry(
    quiet_client: tuple[WxPayClient, Recorder], changes: dict[str, Any], field: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as info:
        await hk_merchants.create_submerchant(client, application(**changes))
    assert info.value.field == field
    assert "pii" not in str(info.value)  # a contact's plaintext never reaches the message
    assert rec.requests == []


def test_a_model_built_directly_refuses_wrong_types_by_field() -> None:
    with pytest.raises(ValidationError) as info:
        hk_merchants.SubMerchantApplication(
            **_model_fields(registration_certificate_date=["2022-06-03"])
        )
    assert info.value.field == "registration_certificate_date"
    with pytest.raises(ValidationError) as info:
        hk_merchants.Business(**{**application()["business"], "store_photos": [b"id"]})
    assert info.value.field == "store_photos"


async def test_a_merchant_code_must_be_ascii_digits(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as info:
        await cloudbase.get_wechatpay_auth(client, "bind", "١٩٠٠٠٠")
    assert info.value.field == "merchant_code"
    assert rec.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://exa\tmple.com/notify",
        "https://example.com/no\ntify",
        "https://:443/notify",
        "https://[::1/notify",
        "https://example.com/a b",
    ],
)
def test_a_notify_url_is_one_plain_https_url(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        converter.structure(
            {
                "domains": ["qq.com"],
                "website_url": "https://qq.com",
                "out_applyment_id": "1",
                "notify_url": url,
            },
            h5_permission.H5DomainApplicationRequest,
        )
    assert info.value.field == "notify_url"


@pytest.mark.parametrize(
    "expires_at", [dt.datetime(2030, 1, 1), "2030-01-01T00:00:00+08:00", 1_900_000_000]
)
def test_a_token_expiry_must_be_an_aware_datetime(expires_at: Any) -> None:
    with pytest.raises(ValidationError) as info:
        ps.PermissionsToken(apply_permissions_token="t", expires_at=expires_at)
    assert info.value.field == "expires_at"


def test_a_naive_compact_time_is_beijing_time() -> None:
    naive = dt.datetime(2018, 2, 25, 11, 22, 33)
    aware = dt.datetime(2018, 2, 25, 3, 22, 33, tzinfo=dt.UTC)
    for when in (naive, aware):
        note = ps.PermissionNotification(openorclose_time=when)  # type: ignore[arg-type]
        assert converter.unstructure(note)["openorclose_time"] == "20180225112233"
