"""The official SDK test vectors (spec §B12, TV1-TV7) against our crypto primitives."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from tests.conftest import vector_file
from wxpay_async import DecryptionError, MerchantCredentials, TimestampOutOfWindowError
from wxpay_async.crypto import (
    Padding,
    SignedHeaders,
    aead_decrypt,
    aead_encrypt,
    build_request_message,
    build_response_message,
    certificate_serial,
    decrypt_field,
    encrypt_field,
    format_authorization,
    load_certificate,
    load_private_key,
    load_public_key,
    parse_authorization,
    sign,
    verify_signature,
)
from wxpay_async.trust import PlatformCertificate


def test_tv1_signature_is_reproduced_byte_for_byte(vectors: dict[str, Any]) -> None:
    tv = vectors["tv1"]
    key = load_private_key(vector_file(tv["private_key_file"]))
    assert sign(key, tv["message"].encode()) == tv["signature"]


def test_tv1_signature_verifies_with_the_certificate_and_fails_on_other_input(
    vectors: dict[str, Any],
) -> None:
    tv = vectors["tv1"]
    cert = load_certificate(vector_file(tv["certificate_file"]))
    assert certificate_serial(cert) == tv["certificate_serial"]
    public = load_public_key(vector_file(tv["certificate_file"]))
    assert verify_signature(public, tv["message"].encode(), tv["signature"])
    assert not verify_signature(public, tv["wrong_message_must_fail"].encode(), tv["signature"])


@pytest.mark.parametrize("case", [0, 1])
def test_tv2_message_and_header_format(vectors: dict[str, Any], case: int) -> None:
    tv = vectors["tv2"]
    c = tv["cases"][case]
    message = build_request_message(
        c["method"], c["canonical_url"], tv["timestamp"], tv["nonce"], c["body"].encode()
    )
    assert message == c["message"].encode()
    # The SDK's mock signer returns "Sign:" + message; our header layout must match its output
    # once the schema is swapped (the real schema is WECHATPAY2-SHA256-RSA2048).
    header = format_authorization(
        mchid=tv["mchid"],
        serial_no=tv["serial_no"],
        nonce=tv["nonce"],
        timestamp=tv["timestamp"],
        signature="Sign:" + c["message"],
    )
    expected = c["authorization"].replace(tv["schema"], "WECHATPAY2-SHA256-RSA2048", 1)
    assert header == expected


def test_tv2_authorization_parses_back_in_any_order(vectors: dict[str, Any]) -> None:
    tv = vectors["tv2"]
    shuffled = (
        'WECHATPAY2-SHA256-RSA2048 signature="c2ln",serial_no="0123456789ABC",'
        'timestamp="1624523846", nonce_str="A1B2C3D4E5F6G7",mchid="1234567890"'
    )
    schema, params = parse_authorization(shuffled)
    assert schema == "WECHATPAY2-SHA256-RSA2048"
    assert params == {
        "signature": "c2ln",
        "serial_no": tv["serial_no"],
        "timestamp": tv["timestamp"],
        "nonce_str": tv["nonce"],
        "mchid": tv["mchid"],
    }


@pytest.mark.parametrize(
    "bad", ["WECHATPAY2-SHA256-RSA2048", 'X mchid="1",mchid="2"', "X mchid=1", 'X ="1"']
)
def test_malformed_authorization_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization(bad)


def test_tv3_full_request_signature(vectors: dict[str, Any]) -> None:
    tv = vectors["tv3"]
    key = load_private_key(vector_file(tv["private_key_file"]))
    message = build_request_message(
        tv["method"], tv["canonical_url"], tv["timestamp"], tv["nonce"], tv["body"].encode()
    )
    assert message == tv["message"].encode()
    assert sign(key, message) == tv["signature"]


def test_tv4_notification_signature_and_resource(vectors: dict[str, Any]) -> None:
    tv = vectors["tv4"]
    cert = PlatformCertificate.from_pem(vector_file(tv["certificate_file"]))
    assert cert.serial_no == tv["certificate_serial"]
    headers = tv["headers"]
    message = build_response_message(
        headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], tv["body"].encode()
    )
    assert verify_signature(cert.public_key, message, headers["Wechatpay-Signature"])
    assert not verify_signature(
        cert.public_key, message.replace(b"PAYSCORE", b"PAYSCORF"), headers["Wechatpay-Signature"]
    )
    resource = json.loads(tv["body"])["resource"]
    plaintext = aead_decrypt(
        tv["apiv3_key"].encode(),
        resource["nonce"],
        resource["associated_data"],
        resource["ciphertext"],
    )
    assert plaintext.decode() == tv["plaintext"]


def test_tv5_aead_round_trip_and_failures(vectors: dict[str, Any]) -> None:
    tv = vectors["tv5"]
    key = tv["apiv3_key"].encode()
    assert len(key) == 32
    assert aead_decrypt(key, tv["nonce"], tv["associated_data"], tv["ciphertext"]) == b"message"
    assert aead_encrypt(key, tv["nonce"], tv["associated_data"], b"message") == tv["ciphertext"]
    with pytest.raises(DecryptionError):
        aead_decrypt(key, tv["nonce"], tv["bad_associated_data"], tv["ciphertext"])
    with pytest.raises(DecryptionError):
        aead_decrypt(key, tv["bad_nonce"], tv["associated_data"], tv["ciphertext"])
    with pytest.raises(DecryptionError):
        aead_decrypt(key, tv["nonce"], tv["associated_data"], "not base64!!")
    with pytest.raises(DecryptionError):
        aead_decrypt(key, tv["nonce"], tv["associated_data"], "AAAA")


def test_tv6_platform_certificate_decrypts_to_its_serial(vectors: dict[str, Any]) -> None:
    tv = vectors["tv6"]
    entry = json.loads(tv["response"])["data"][0]
    enc = entry["encrypt_certificate"]
    pem = aead_decrypt(
        tv["apiv3_key"].encode(), enc["nonce"], enc["associated_data"], enc["ciphertext"]
    )
    cert = PlatformCertificate.from_pem(pem)
    assert cert.serial_no == entry["serial_no"] == tv["serial_no"]
    assert cert.effective_time.isoformat().startswith("2023-09-19")
    assert cert.expire_time.isoformat().startswith("2028-09-17")


def test_tv7_sensitive_fields_decrypt_with_both_paddings(vectors: dict[str, Any]) -> None:
    tv = vectors["tv7"]
    key = load_private_key(vector_file(tv["private_key_file"]))
    assert decrypt_field(key, tv["oaep_sha1_ciphertext"], Padding.OAEP) == tv["plaintext"]
    assert decrypt_field(key, tv["pkcs1v15_ciphertext"], Padding.PKCS1V15) == tv["plaintext"]
    for padding in Padding:
        with pytest.raises(DecryptionError):
            decrypt_field(key, tv["invalid_ciphertext_must_fail"], padding)
    # A ciphertext made with one padding does not decrypt under the other.
    with pytest.raises(DecryptionError):
        decrypt_field(key, tv["oaep_sha1_ciphertext"], Padding.PKCS1V15)


@pytest.mark.parametrize("padding", list(Padding))
def test_tv7_encryption_round_trips_through_the_certificate(
    vectors: dict[str, Any], padding: Padding
) -> None:
    tv = vectors["tv7"]
    public = load_public_key(vector_file(tv["certificate_file"]))
    private = load_private_key(vector_file(tv["private_key_file"]))
    first = encrypt_field(public, "香港 contact ✓", padding)
    second = encrypt_field(public, "香港 contact ✓", padding)
    assert first != second  # randomized: encrypting per attempt would change the body
    assert decrypt_field(private, first, padding) == "香港 contact ✓"


@pytest.mark.parametrize(("padding", "limit"), [(Padding.OAEP, 214), (Padding.PKCS1V15, 245)])
def test_plaintext_limits(vectors: dict[str, Any], padding: Padding, limit: int) -> None:
    public = load_public_key(vector_file(vectors["tv7"]["certificate_file"]))
    encrypt_field(public, "a" * limit, padding)
    with pytest.raises(ValueError, match=str(limit)):
        encrypt_field(public, "a" * (limit + 1), padding)


@pytest.mark.parametrize("case", [0, 1])
def test_tv2_credentials_authorization_is_the_step_by_step_header(
    vectors: dict[str, Any], case: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MerchantCredentials.authorization`` (flat, per request) equals the TV2 steps done one
    by one with the TV1 key (PKCS#1 v1.5 is deterministic), and verifies with TV1's certificate."""
    tv, c = vectors["tv2"], vectors["tv2"]["cases"][case]
    key_pem = vector_file(vectors["tv1"]["private_key_file"])
    credentials = MerchantCredentials(
        mchid=tv["mchid"], serial_no=tv["serial_no"], private_key=key_pem, apiv3_key=b"k" * 32
    )
    monkeypatch.setattr(os, "urandom", lambda n: bytes(range(n)))
    nonce = bytes(range(16)).hex()
    header = credentials.authorization(
        c["method"].lower(), c["canonical_url"], c["body"].encode(), int(tv["timestamp"])
    )
    message = build_request_message(
        c["method"], c["canonical_url"], tv["timestamp"], nonce, c["body"].encode()
    )
    assert message == c["message"].replace(tv["nonce"], nonce).encode()
    signature = sign(load_private_key(key_pem), message)
    assert header == format_authorization(
        mchid=tv["mchid"],
        serial_no=tv["serial_no"],
        nonce=nonce,
        timestamp=tv["timestamp"],
        signature=signature,
    )
    public = load_public_key(vector_file(vectors["tv1"]["certificate_file"]))
    assert verify_signature(public, message, parse_authorization(header)[1]["signature"])


@pytest.mark.parametrize("form", ["aiohttp", "lower-case dict", "bytes keys", "bytes values"])
def test_tv4_signed_headers_checked_and_verifies(vectors: dict[str, Any], form: str) -> None:
    """The one-call header check and signature check on TV4, whatever the headers' container:
    aiohttp's case-insensitive proxy (the answer path's fast read) or what frameworks hand in."""
    tv = vectors["tv4"]
    cert = PlatformCertificate.from_pem(vector_file(tv["certificate_file"]))
    headers: Any = {k: f" {v} " if k == "Wechatpay-Nonce" else v for k, v in tv["headers"].items()}
    headers["Wechatpay-Signature-Type"] = " WECHATPAY2-SHA256-RSA2048 "
    if form == "aiohttp":
        headers = CIMultiDictProxy(CIMultiDict(headers))
    elif form == "bytes values":  # a CIMultiDict built by hand from raw header values
        headers = CIMultiDict({k: v.encode() for k, v in headers.items()})
    elif form == "lower-case dict":
        headers = {k.lower(): v for k, v in headers.items()}
    else:
        headers = {k.encode(): v.encode() for k, v in headers.items()}
    now = float(tv["frozen_now_unix"])
    signed = SignedHeaders.checked(headers, 300, lambda: now)
    assert (signed.serial, signed.nonce) == (
        tv["certificate_serial"],
        "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz",
    )
    assert signed.verifies(cert.public_key, tv["body"].encode())
    assert not signed.verifies(cert.public_key, tv["body"].replace("PAYSCORE", "PAYSCORF").encode())
    with pytest.raises(TimestampOutOfWindowError):
        SignedHeaders.checked(headers, 300, lambda: now + 300)
