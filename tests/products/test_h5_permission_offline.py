"""H5 permission without a server: request rules, lenient answers, the OA spelling."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest

from wxpay_async import ValidationError, WxPayClient, converter
from wxpay_async.products import h5_permission
from wxpay_async.products.h5_permission import (
    ApplymentState,
    AuthorizationState,
    H5Application,
    H5ApplicationNotification,
    H5AuthorizationStatus,
    H5DomainApplication,
)

from .conftest import Recorder
from .seeds import H5_CREATE_REQUEST, H5_CREATE_RESPONSE

UNLAUNCHED = {
    "website_state": "UN_LAUNCHED",
    "transaction_limit_type": "UN_LAUNCHED_WEBSITE_LIMIT",
    "website_homepage_pics": ["m1"],
    "website_business_page_pics": ["m2"],
}


def request(**changes: Any) -> dict[str, Any]:
    data = deepcopy(H5_CREATE_REQUEST)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def test_seed_request_and_a_launched_default_request_are_valid() -> None:
    model = converter.structure(request(), h5_permission.H5ApplicationRequest)
    assert model.domains == ["qq.com"]
    minimal = {"sub_mchid": "1", "domains": ["a.com"], "website_url": "https://a.com"}
    assert converter.structure(minimal, h5_permission.H5ApplicationRequest).website_state is None
    converter.structure(request(**UNLAUNCHED), h5_permission.H5ApplicationRequest)


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"domains": []}, "domains", "at least 1"),
        ({"domains": [""]}, "domains[0]", "must not be empty"),
        ({"domains": ["d" * 129]}, "domains[0]", "at most 128"),
        ({"domains": ["https://qq.com"]}, "domains[0]", "bare domain"),
        ({"domains": ["qq.com", "qq .com"]}, "domains[1]", "bare domain"),
        ({"website_url": "qq.com"}, "website_url", "http(s) URL"),
        ({"domains": "qq.com"}, "domains", "must be a list"),
        ({"website_url": "u" * 129}, "website_url", "at most 128"),
        ({"sub_mchid": ...}, "sub_mchid", "required"),
        ({"notify_url": "http://www.tg885.com/wxpay/pay.action"}, "notify_url", "https"),
        ({"notify_url": "https://a.com/cb?x=1"}, "notify_url", "query"),
        ({"transaction_limit_type": "UNLIMITED"}, "transaction_limit_type", "NO_LIMIT"),
        ({"business_description": "d" * 501}, "business_description", "at most 500"),
        ({"company_register_cert": "c" * 129}, "company_register_cert", "at most 128"),
        (
            {"transaction_limit_type": "NO_LIMIT", "business_description": ...},
            "business_description",
            "NO_LIMIT",
        ),
        (
            {
                "transaction_limit_type": "NO_LIMIT",
                "business_description": "ok",
                "company_register_cert": ...,
            },
            "company_register_cert",
            "NO_LIMIT",
        ),
        ({**UNLAUNCHED, "website_homepage_pics": ...}, "website_homepage_pics", "UN_LAUNCHED"),
        (
            {**UNLAUNCHED, "website_business_page_pics": []},
            "website_business_page_pics",
            "at least 1",
        ),
        (
            {**UNLAUNCHED, "transaction_limit_type": ...},
            "transaction_limit_type",
            "UN_LAUNCHED_WEBSITE_LIMIT",
        ),
        (
            {"applyment_type": "APPLY_FOR_RELIEVE_LIMITED"},
            "transaction_limit_type",
            "must be NO_LIMIT",
        ),
    ],
)
async def test_invalid_create_raises_before_sending(
    quiet_client: tuple[WxPayClient, Recorder], changes: dict[str, Any], field: str, rule: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await h5_permission.create_application(client, request(**changes))
    assert (caught.value.field, rule in caught.value.rule) == (field, True), caught.value
    assert rec.requests == []


@pytest.mark.parametrize("bad", [0, -3, "12a", True, None, 1.5])
async def test_applyment_id_must_be_a_positive_integer(
    quiet_client: tuple[WxPayClient, Recorder], bad: Any
) -> None:
    client, rec = quiet_client
    for call in (
        h5_permission.get_application(client, bad),
        h5_permission.get_domain_application(client, bad),
        h5_permission.modify_application(client, bad, {"domains": ["a.com"]}),
    ):
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.field == "applyment_id"
    assert rec.requests == []


async def test_changes_and_state_queries_are_validated_before_sending(
    quiet_client: tuple[WxPayClient, Recorder],
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await h5_permission.modify_application(client, 7, {"website_url": "https://a.com"})
    assert caught.value.field == "domains"
    with pytest.raises(ValidationError) as caught:
        await h5_permission.modify_application(
            client, 7, {"domains": ["a.com"], "website_state": "UN_LAUNCHED"}
        )
    assert caught.value.field == "website_homepage_pics"
    with pytest.raises(ValidationError) as caught:
        await h5_permission.get_authorization_state(client, "9" * 33)
    assert caught.value.field == "sub_mchid"
    with pytest.raises(ValidationError) as caught:
        await h5_permission.create_domain_application(
            client, {"sub_mchid": "1", "domains": ["a.com"], "website_url": "https://a.com"}
        )
    assert caught.value.field == "out_applyment_id"
    with pytest.raises(ValidationError) as caught:
        await h5_permission.modify_domain_application(
            client, 7, {"domains": ["a.com"], "notify_url": "https://a.com"}
        )
    assert caught.value.field == "notify_url"  # not a field of the domain PATCH body
    assert rec.requests == []


def test_a_change_without_a_limit_type_keeps_the_current_one() -> None:
    changes = converter.structure(
        {
            "domains": ["a.com"],
            "website_state": "UN_LAUNCHED",
            "website_homepage_pics": ["m1"],
            "website_business_page_pics": ["m2"],
        },
        h5_permission.H5ApplicationChanges,
    )
    assert changes.transaction_limit_type is None


def test_seed_response_and_unknown_states_are_kept() -> None:
    app = converter.structure(H5_CREATE_RESPONSE, H5Application)
    assert app.applyment_id == 100000
    assert app.applyment_state is ApplymentState.PENDING
    assert app.website_homepage_pics == ["6uqyGjvHzOhsLleGFQVRF"]
    future = converter.structure(
        {**H5_CREATE_RESPONSE, "applyment_state": "CANCELED", "new_field": {"a": 1}}, H5Application
    )
    assert future.applyment_state == "CANCELED"
    assert future.extra == {"new_field": {"a": 1}}


def test_notification_resource_needs_only_the_application_number() -> None:
    note = converter.structure(
        {"applyment_id": 7, "result": "approved", "applyment_state": "APPROVED"},
        H5ApplicationNotification,
    )
    assert note.applyment_id == 7
    assert note.applyment_state is ApplymentState.APPROVED
    assert note.extra == {"result": "approved"}
    bare = converter.structure({"applyment_id": 8}, H5ApplicationNotification)
    assert bare.applyment_state is None
    with pytest.raises(ValidationError) as caught:
        converter.structure({"applyment_state": "APPROVED"}, H5ApplicationNotification)
    assert caught.value.field == "applyment_id"
    with pytest.raises(ValidationError) as caught:
        converter.structure({"applyment_id": 9}, H5Application)  # answers always carry a state
    assert caught.value.field == "applyment_state"


@pytest.mark.parametrize("state", [s.value for s in AuthorizationState] + ["SOMETHING_NEW"])
def test_authorization_state_accepts_the_five_values_and_unknown_ones(state: str) -> None:
    status = converter.structure(
        {"sub_mchid": "2491935631", "authorization_state": state}, H5AuthorizationStatus
    )
    assert status.authorization_state == state


@pytest.mark.parametrize("key", ["website_url", "webiste_url"])
def test_domain_application_reads_both_spellings(key: str) -> None:
    answer = {
        "applyment_id": 1000000,
        "out_applyment_id": "123456",
        "sub_mchid": "2491935631",
        "domains": ["qq.com"],
        key: "https://qq.com",
        "website_state": "HAS_LAUNCHED",
        "applyment_state": "PENDING",
    }
    app = converter.structure(answer, H5DomainApplication)
    assert app.website_url == "https://qq.com"
    assert app.extra == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"website_state": "LIVE"}, "website_state"),
        ({"transaction_limit_type": "UNLIMITED"}, "transaction_limit_type"),
        ({"applyment_type": "RENEW"}, "applyment_type"),
        ({"domains": "qq.com"}, "domains"),  # a string, not a list of one domain
        ({"website_homepage_pics": "m1"}, "website_homepage_pics"),
    ],
)
def test_a_model_built_directly_checks_enums_and_lists(changes: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {
        "sub_mchid": "1",
        "domains": ["a.com"],
        "website_url": "https://a.com",
        **changes,
    }
    with pytest.raises(ValidationError) as caught:
        h5_permission.H5ApplicationRequest(**fields)
    assert caught.value.field == field
