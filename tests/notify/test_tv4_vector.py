"""The official notification vector TV4 (wechatpay-go notify_test.go) and its refusals."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from wxpay_async import (
    DecryptionError,
    MalformedNotificationError,
    SignatureProbeError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    UnknownSerialError,
    ValidationError,
)
from wxpay_async.crypto import build_response_message, load_private_key, sign
from wxpay_async.notify import (
    NotificationVerifier,
    ShortAPIv3KeyWarning,
    UnsupportedAlgorithmError,
)
from wxpay_async.trust import CertificateTrust

VECTORS = Path(__file__).parent.parent / "vectors"


@pytest.fixture(scope="module")
def tv4() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text())["tv4"]
    return data


@pytest.fixture(scope="module")
def trust(tv4: dict[str, Any]) -> CertificateTrust:
    return CertificateTrust(certificates=[(VECTORS / tv4["certificate_file"]).read_bytes()])


def make_verifier(tv4: dict[str, Any], trust: CertificateTrust, **options: Any) -> Any:
    options.setdefault("apiv3_key", tv4["apiv3_key"])
    options.setdefault("allow_short_key", True)
    options.setdefault("clock", lambda: float(tv4["frozen_now_unix"]))
    return NotificationVerifier(trust=trust, **options)


def resign(tv4: dict[str, Any], body: bytes, **headers: str) -> dict[str, str]:
    """Sign ``body`` with the vector's own key (TV4's certificate holds TV1's RSA key)."""
    key = load_private_key((VECTORS / "tv1_private_key.pem").read_bytes())
    out = dict(tv4["headers"])
    out.update(headers)
    message = build_response_message(out["Wechatpay-Timestamp"], out["Wechatpay-Nonce"], body)
    out["Wechatpay-Signature"] = sign(key, message)
    return out


async def test_tv4_verifies_and_decrypts(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    verifier = make_verifier(tv4, trust)
    verifier.register("PAYSCORE.USER_OPEN_SERVICE", dict)  # the raw plaintext, for comparison
    notification = await verifier.parse(tv4["headers"], tv4["body"].encode())
    expected = tv4["expected"]
    assert notification.id == expected["id"]
    assert notification.event_type == expected["event_type"]
    assert notification.resource_type == expected["resource_type"]
    assert notification.summary == expected["summary"]
    assert notification.original_type == expected["resource.original_type"]
    assert notification.create_time == dt.datetime.fromisoformat(expected["create_time"])
    assert notification.serial == tv4["certificate_serial"]
    assert notification.resource == json.loads(tv4["plaintext"])


async def test_tv4_default_registry_types_the_payscore_resource(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    payscore = pytest.importorskip("wxpay_async.products.payscore_permissions")
    notification = await make_verifier(tv4, trust).parse(tv4["headers"], tv4["body"].encode())
    assert isinstance(notification.resource, payscore.PermissionNotification)
    assert notification.resource.mchid == json.loads(tv4["plaintext"])["mchid"]


def test_16_byte_key_warns_unless_acknowledged(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    with pytest.warns(ShortAPIv3KeyWarning):
        NotificationVerifier(apiv3_key=tv4["apiv3_key"], trust=trust)
    with pytest.warns(ShortAPIv3KeyWarning):
        NotificationVerifier(apiv3_key=b"k" * 24, trust=trust)


@pytest.mark.parametrize("key", ["", "short", "x" * 20, "x" * 31, "x" * 33, b"y" * 64])
def test_other_key_lengths_are_refused(trust: CertificateTrust, key: str | bytes) -> None:
    with pytest.raises(ValidationError) as info:
        NotificationVerifier(apiv3_key=key, trust=trust)
    assert info.value.field == "apiv3_key"


async def test_16_byte_key_without_flag_still_parses(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    with pytest.warns(ShortAPIv3KeyWarning):
        verifier = make_verifier(tv4, trust, allow_short_key=False)
    notification = await verifier.parse(tv4["headers"], tv4["body"].encode())
    assert notification.id == tv4["expected"]["id"]


async def test_tampered_body_is_refused(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    body = tv4["body"].replace("签约成功", "签约失败").encode()
    with pytest.raises(SignatureVerificationError) as info:
        await make_verifier(tv4, trust).parse(tv4["headers"], body)
    assert type(info.value) is SignatureVerificationError


async def test_tampered_signature_is_refused(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    raw = bytearray(base64.b64decode(tv4["headers"]["Wechatpay-Signature"]))
    raw[100] ^= 0x01
    headers = dict(tv4["headers"], **{"Wechatpay-Signature": base64.b64encode(raw).decode()})
    with pytest.raises(SignatureVerificationError) as info:
        await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())
    assert type(info.value) is SignatureVerificationError


async def test_wrong_apiv3_key_fails_decryption(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    verifier = make_verifier(tv4, trust, apiv3_key="testMchAPIv3Key1")
    with pytest.raises(DecryptionError):
        await verifier.parse(tv4["headers"], tv4["body"].encode())


@pytest.mark.parametrize("offset", [300, 301, 86400, -300, -301, -86400])
async def test_stale_and_future_timestamps_are_refused(
    tv4: dict[str, Any], trust: CertificateTrust, offset: int
) -> None:
    verifier = make_verifier(tv4, trust, clock=lambda: tv4["frozen_now_unix"] + offset)
    with pytest.raises(TimestampOutOfWindowError):
        await verifier.parse(tv4["headers"], tv4["body"].encode())


@pytest.mark.parametrize("offset", [299, -299, 0])
async def test_inside_the_window_is_accepted(
    tv4: dict[str, Any], trust: CertificateTrust, offset: int
) -> None:
    verifier = make_verifier(tv4, trust, clock=lambda: tv4["frozen_now_unix"] + offset)
    assert (await verifier.parse(tv4["headers"], tv4["body"].encode())).id


async def test_window_is_configurable(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    verifier = make_verifier(tv4, trust, window=60, clock=lambda: tv4["frozen_now_unix"] + 61)
    with pytest.raises(TimestampOutOfWindowError):
        await verifier.parse(tv4["headers"], tv4["body"].encode())


async def test_signtest_probe_is_refused(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    headers = dict(tv4["headers"])
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    with pytest.raises(SignatureProbeError):
        await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1,2,3]", b'"text"', b"\xff\xfe\x00", b""],
    ids=["broken", "array", "string", "not-utf8", "empty"],
)
async def test_signed_but_malformed_json_is_refused(
    tv4: dict[str, Any], trust: CertificateTrust, body: bytes
) -> None:
    with pytest.raises(MalformedNotificationError):
        await make_verifier(tv4, trust).parse(resign(tv4, body), body)


@pytest.mark.parametrize(
    "header", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"]
)
async def test_missing_header_is_refused(
    tv4: dict[str, Any], trust: CertificateTrust, header: str
) -> None:
    headers = {k: v for k, v in tv4["headers"].items() if k != header}
    with pytest.raises(SignatureVerificationError, match=header):
        await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())


async def test_unknown_signature_type_is_refused(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    headers = dict(tv4["headers"], **{"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"})
    with pytest.raises(SignatureVerificationError, match="Signature-Type"):
        await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())


async def test_explicit_rsa_signature_type_is_accepted(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    assert "Wechatpay-Signature-Type" not in tv4["headers"]  # absent in the vector: RSA
    headers = dict(tv4["headers"], **{"Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"})
    assert (await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())).id


async def test_unknown_resource_algorithm_is_refused(
    tv4: dict[str, Any], trust: CertificateTrust
) -> None:
    body = tv4["body"].replace("AEAD_AES_256_GCM", "AEAD_SM4_GCM").encode()
    with pytest.raises(UnsupportedAlgorithmError) as info:
        await make_verifier(tv4, trust).parse(resign(tv4, body), body)
    assert isinstance(info.value, DecryptionError)
    assert isinstance(info.value, MalformedNotificationError)


async def test_unknown_serial_is_refused(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    headers = dict(tv4["headers"], **{"Wechatpay-Serial": "ABCDEF0123456789", "Request-ID": "r-1"})
    with pytest.raises(UnknownSerialError) as info:
        await make_verifier(tv4, trust).parse(headers, tv4["body"].encode())
    assert info.value.request_id == "r-1"


async def test_associated_data_is_bound(tv4: dict[str, Any], trust: CertificateTrust) -> None:
    body = tv4["body"].replace('"associated_data":"payscore"', '"associated_data":""').encode()
    with pytest.raises(DecryptionError):
        await make_verifier(tv4, trust).parse(resign(tv4, body), body)
