"""NotificationVerifier with generated notifications: shapes, headers, errors, secrets."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from multidict import CIMultiDict

from wxpay_async import (
    DecryptionError,
    MalformedNotificationError,
    MerchantCredentials,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.notify import NotificationVerifier, headers_from_meta
from wxpay_async.trust import PublicKeyTrust

from ._factory import APIV3_KEY, NOW, PERMISSION_RESOURCE, NotificationFactory


def edit(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(body)
    change(document)
    return json.dumps(document, ensure_ascii=False).encode()


async def test_round_trip(verifier: NotificationVerifier, factory: NotificationFactory) -> None:
    verifier.register("PAYSCORE.USER_OPEN_SERVICE", dict)
    headers, body = factory.make(notification_id="EV-2018022511223320873")
    notification = await verifier.parse(headers, body)
    assert notification.id == "EV-2018022511223320873"
    assert notification.resource == PERMISSION_RESOURCE
    assert notification.request_id == headers["Request-ID"]


@pytest.mark.parametrize("associated_data", [None, ""])
async def test_absent_or_empty_associated_data(
    verifier: NotificationVerifier, factory: NotificationFactory, associated_data: str | None
) -> None:
    verifier.register("PAYSCORE.USER_OPEN_SERVICE", dict)
    headers, body = factory.make(associated_data=associated_data)
    assert json.loads(body)["resource"].get("associated_data") == associated_data
    assert (await verifier.parse(headers, body)).resource == PERMISSION_RESOURCE


async def test_default_window_is_300_seconds(
    trust: PublicKeyTrust, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    late = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, clock=lambda: NOW + 300.0)
    with pytest.raises(TimestampOutOfWindowError):
        await late.parse(headers, body)
    almost = NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, clock=lambda: NOW + 299.5)
    assert (await almost.parse(headers, body)).id


async def test_non_integer_timestamp_is_refused(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    headers["Wechatpay-Timestamp"] = "17e8"
    with pytest.raises(SignatureVerificationError, match="integer"):
        await verifier.parse(headers, body)


async def test_headers_are_read_case_insensitively_from_any_mapping(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    lower = {k.lower(): v for k, v in headers.items()}
    upper = CIMultiDict({k.upper(): v for k, v in headers.items()})
    asgi = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw_keys = {k.encode(): v.encode() for k, v in headers.items()}
    for variant in (lower, upper, asgi, raw_keys):
        notification = await verifier.parse(variant, body)
        assert notification.id
        assert notification.request_id == headers["Request-ID"]


async def test_django_meta_helper(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    meta: dict[str, Any] = {
        "HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"
    }
    meta.update(
        {
            "CONTENT_TYPE": "application/json",
            "REMOTE_ADDR": "10.0.0.1",
            "wsgi.input": object(),
        }
    )
    converted = headers_from_meta(meta)
    assert converted["Wechatpay-Signature"] == headers["Wechatpay-Signature"]
    assert converted["Content-Type"] == "application/json"
    assert "Remote-Addr" not in converted
    assert "wsgi.input" not in converted
    assert (await verifier.parse(converted, body)).id
    with pytest.raises(SignatureVerificationError, match="missing"):
        await verifier.parse(meta, body)  # raw META is not a header mapping


async def test_body_must_be_raw_bytes(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    headers, body = factory.make()
    with pytest.raises(ValidationError) as info:
        await verifier.parse(headers, body.decode())  # type: ignore[arg-type]
    assert info.value.field == "body"
    assert (await verifier.parse(headers, bytearray(body))).id
    assert (await verifier.parse(headers, memoryview(body))).id


def _drop(key: str, *, inside: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        del (doc["resource"] if inside else doc)[key]

    return change


def _set(key: str, value: Any, *, inside: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        (doc["resource"] if inside else doc)[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_drop("id"), "id"),
        (_set("id", ""), "id"),
        (_set("id", 12345), "id"),
        (_set("id", "x" * 129), "longer"),
        (_drop("event_type"), "event_type"),
        (_drop("create_time"), "create_time"),
        (_set("create_time", "yesterday"), "create_time"),
        (_set("create_time", "2024-05-20T13:29:35"), "create_time"),  # no offset
        (_drop("resource"), "resource"),
        (_set("resource", "cipher"), "resource"),
        (_drop("ciphertext", inside=True), "ciphertext"),
        (_drop("nonce", inside=True), "nonce"),
        (_set("associated_data", 7, inside=True), "associated_data"),
        (_set("summary", ["a"]), "summary"),
    ],
)
async def test_signed_but_malformed_envelopes_are_refused(
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    change: Callable[[dict[str, Any]], None],
    match: str,
) -> None:
    body = edit(factory.body(PERMISSION_RESOURCE), change)
    with pytest.raises(MalformedNotificationError, match=match):
        await verifier.parse(factory.headers(body), body)


@pytest.mark.parametrize("plaintext", [b"not json", b"[1]", b"null"])
async def test_decrypted_resource_must_be_a_json_object(
    verifier: NotificationVerifier, factory: NotificationFactory, plaintext: bytes
) -> None:
    from wxpay_async.crypto import aead_encrypt

    body = edit(
        factory.body(PERMISSION_RESOURCE),
        _set(
            "ciphertext",
            aead_encrypt(APIV3_KEY, "Kj7QIyUiYx1q", "payscore", plaintext),
            inside=True,
        ),
    )
    with pytest.raises(MalformedNotificationError, match="decrypted resource"):
        await verifier.parse(factory.headers(body), body)


@pytest.mark.parametrize(
    "change",
    [
        _set("nonce", "abc", inside=True),  # too short for AES-GCM
        _set("nonce", "Kj7QIyUiYx1Q", inside=True),
        _set("associated_data", "certificate", inside=True),
        _set("ciphertext", "not base64!", inside=True),
        _set("ciphertext", "AAAA", inside=True),  # shorter than the tag
    ],
)
async def test_resource_fields_are_authenticated_by_the_aead(
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    change: Callable[[dict[str, Any]], None],
) -> None:
    body = edit(factory.body(PERMISSION_RESOURCE), change)  # re-signed: only AES-GCM can object
    with pytest.raises(DecryptionError):
        await verifier.parse(factory.headers(body), body)


async def test_resource_encrypted_under_another_key_is_refused(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    body = factory.body(PERMISSION_RESOURCE, key=b"Z" * 32)
    with pytest.raises(DecryptionError):
        await verifier.parse(factory.headers(body), body)


async def test_from_client_shares_key_and_trust(
    trust: PublicKeyTrust, factory: NotificationFactory, rsa_key_pem: bytes
) -> None:
    credentials = MerchantCredentials(
        mchid="1900000109", serial_no="ABC123", private_key=rsa_key_pem, apiv3_key=APIV3_KEY
    )
    async with WxPayClient(credentials, trust=trust) as client:
        verifier = NotificationVerifier.from_client(client, clock=lambda: float(NOW))
        assert verifier.trust is trust
        headers, body = factory.make()
        assert (await verifier.parse(headers, body)).event_type == "PAYSCORE.USER_OPEN_SERVICE"


@pytest.mark.parametrize("window", [0, -1, True, "300"])
def test_window_must_be_positive(trust: PublicKeyTrust, window: Any) -> None:
    with pytest.raises(ValidationError) as info:
        NotificationVerifier(apiv3_key=APIV3_KEY, trust=trust, window=window)
    assert info.value.field == "window"


def test_trust_must_provide_keys() -> None:
    with pytest.raises(ValidationError) as info:
        NotificationVerifier(apiv3_key=APIV3_KEY, trust=object())  # type: ignore[arg-type]
    assert info.value.field == "trust"


def test_secrets_stay_out_of_repr_and_pickles(verifier: NotificationVerifier) -> None:
    assert APIV3_KEY.decode() not in repr(verifier)
    with pytest.raises(TypeError):
        pickle.dumps(verifier)


async def test_decrypted_contents_stay_out_of_repr_and_logs(
    verifier: NotificationVerifier,
    factory: NotificationFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    headers, body = factory.make()
    notification = await verifier.parse(headers, body)
    openid = PERMISSION_RESOURCE["openid"]
    assert openid not in repr(notification)
    assert openid not in caplog.text


async def test_unencodable_nonce_is_a_decryption_error(
    verifier: NotificationVerifier, factory: NotificationFactory
) -> None:
    body = factory.body(PERMISSION_RESOURCE).replace(b'"Kj7QIyUiYx1q"', b'"Kj7QIyUi\\ud800Yx1q"')
    with pytest.raises(DecryptionError, match="nonce"):
        await verifier.parse(factory.headers(body), body)
