"""event_type → resource model: built-ins, registration, prefixes, and misfits."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import pytest

from wxpay_async import MalformedNotificationError, ValidationError
from wxpay_async.notify import DEFAULT_MODELS, EventRegistry, NotificationVerifier
from wxpay_async.trust import PublicKeyTrust

from ._factory import APIV3_KEY, PERMISSION_RESOURCE, NotificationFactory


@attrs.frozen(kw_only=True)
class Review:
    applyment_id: int
    applyment_state: str
    extra: dict[str, Any] = attrs.field(factory=dict)


H5_RESOURCE: dict[str, Any] = {
    "applyment_id": 2000002124775691,
    "applyment_state": "APPROVED",
    "sub_mchid": "1900000109",
    "domains": ["example.com"],
    "website_url": "https://example.com/shop",
}


async def test_payscore_events_become_permission_notifications(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    payscore = pytest.importorskip("wxpay_async.products.payscore_permissions")
    for event in ("PAYSCORE.USER_OPEN_SERVICE", "PAYSCORE.USER_CLOSE_SERVICE"):
        headers, body = factory.make(event_type=event)
        resource = (await verifier.parse(headers, body)).resource
        assert isinstance(resource, payscore.PermissionNotification)
        # the samples' mch_id / sub_mch_id spelling lands on the canonical names
        assert resource.mchid == PERMISSION_RESOURCE["mch_id"]
        assert resource.sub_mchid == PERMISSION_RESOURCE["sub_mch_id"]
        assert resource.authorization_code == PERMISSION_RESOURCE["authorization_code"]


@pytest.mark.parametrize("event", ["APPLYMENT_STATE.APPROVED", "APPLYMENT_STATE.REJECTED"])
async def test_applyment_state_prefix_becomes_h5_application(
    verifier: NotificationVerifier, factory: NotificationFactory, event: str
) -> None:
    h5 = pytest.importorskip("wxpay_async.products.h5_permission")
    headers, body = factory.make(H5_RESOURCE, event_type=event)
    resource = (await verifier.parse(headers, body)).resource
    assert isinstance(resource, h5.H5ApplicationNotification)
    assert resource.applyment_id == H5_RESOURCE["applyment_id"]


async def test_unknown_event_types_stay_mappings(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make({"anything": [1, 2]}, event_type="TRANSACTION.SUCCESS")
    assert (await verifier.parse(headers, body)).resource == {"anything": [1, 2]}


async def test_registered_model_exact_and_prefix(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    verifier.register("REVIEW.*", Review)
    verifier.register("REVIEW.SPECIAL", lambda data: ("special", data["applyment_id"]))
    headers, body = factory.make(H5_RESOURCE, event_type="REVIEW.DONE")
    resource = (await verifier.parse(headers, body)).resource
    assert resource == Review(
        applyment_id=H5_RESOURCE["applyment_id"],
        applyment_state="APPROVED",
        extra={k: v for k, v in H5_RESOURCE.items() if not k.startswith("applyment")},
    )
    headers, body = factory.make(H5_RESOURCE, event_type="REVIEW.SPECIAL")
    assert (await verifier.parse(headers, body)).resource == ("special", 2000002124775691)


async def test_a_registration_applies_to_event_types_already_seen(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make(H5_RESOURCE, event_type="REVIEW.DONE")
    assert (await verifier.parse(headers, body)).resource == H5_RESOURCE  # no model yet
    verifier.register("REVIEW.*", Review)
    headers, body = factory.make(H5_RESOURCE, event_type="REVIEW.DONE")
    assert isinstance((await verifier.parse(headers, body)).resource, Review)
    verifier.register("REVIEW.DONE", lambda data: data["applyment_state"])
    headers, body = factory.make(H5_RESOURCE, event_type="REVIEW.DONE")
    assert (await verifier.parse(headers, body)).resource == "APPROVED"


def test_longest_prefix_wins_and_exact_beats_prefix() -> None:
    registry = EventRegistry()
    registry.register("A.*", dict)
    registry.register("A.B.*", list)
    registry.register("A.B.C", tuple)
    assert registry.model_for("A.X") is dict
    assert registry.model_for("A.B.X") is list
    assert registry.model_for("A.B.C") is tuple
    assert registry.model_for("B.X") is None


def test_registration_is_per_verifier(trust: PublicKeyTrust) -> None:
    one = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust)
    two = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust)
    one.register("X.Y", dict)
    assert one.registry.model_for("X.Y") is dict
    assert two.registry.model_for("X.Y") is None


@pytest.mark.parametrize("pattern", ["", "*", "A*.B", 5])
def test_bad_patterns_are_refused(pattern: Any) -> None:
    with pytest.raises(ValidationError) as info:
        EventRegistry().register(pattern, dict)
    assert info.value.field == "event_type"


def test_model_must_be_callable() -> None:
    with pytest.raises(ValidationError) as info:
        EventRegistry().register("A.B", "Review")  # type: ignore[arg-type]
    assert info.value.field == "model"


async def test_misfit_resource_is_delivered_as_mapping_with_a_warning(
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier.register("REVIEW.*", Review)
    secret_state = "SECRET-STATE-VALUE"
    resource = {"applyment_id": "not-an-int", "applyment_state": secret_state}
    headers, body = factory.make(resource, event_type="REVIEW.DONE")
    with caplog.at_level(logging.WARNING, logger="wxpay_async"):
        notification = await verifier.parse(headers, body)
    assert notification.resource == resource
    assert "applyment_id" in caplog.text
    assert "not-an-int" not in caplog.text
    assert secret_state not in caplog.text


async def test_misfit_resource_is_refused_when_strict(
    trust: PublicKeyTrust, factory: NotificationFactory
) -> None:
    verifier = NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=trust, clock=lambda: factory.now, strict_resources=True
    )
    verifier.register("REVIEW.*", Review)
    headers, body = factory.make({"applyment_state": "APPROVED"}, event_type="REVIEW.DONE")
    with pytest.raises(MalformedNotificationError, match="applyment_id") as info:
        await verifier.parse(headers, body)
    assert "APPROVED" not in str(info.value)


async def test_missing_builtin_model_degrades_to_mapping(
    monkeypatch: pytest.MonkeyPatch,
    trust: PublicKeyTrust,
    factory: NotificationFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(DEFAULT_MODELS, "GHOST.*", "wxpay_async.products.no_such_module:Model")
    verifier = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, clock=lambda: factory.now)
    headers, body = factory.make({"a": 1}, event_type="GHOST.EVENT")
    with caplog.at_level(logging.WARNING, logger="wxpay_async"):
        assert (await verifier.parse(headers, body)).resource == {"a": 1}
    assert "no_such_module" in caplog.text
