"""Edge cases of key loading and signature-header handling."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import vector_file
from wxpay_async import (
    DecryptionError,
    SignatureProbeError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    ValidationError,
)
from wxpay_async.crypto import (
    SignedHeaders,
    aead_decrypt,
    check_timestamp,
    load_certificate,
    load_private_key,
    load_public_key,
    new_nonce,
    verify_signature,
)

HEADERS = {
    "Wechatpay-Timestamp": "1700000000",
    "Wechatpay-Nonce": "n",
    "Wechatpay-Signature": "c2ln",
    "Wechatpay-Serial": "ABC",
}


def test_headers_are_read_case_insensitively_from_any_mapping() -> None:
    lowered = {k.lower(): v.encode() for k, v in HEADERS.items()}
    lowered["request-id"] = b"rid"
    signed = SignedHeaders.from_headers(lowered)
    assert (signed.timestamp, signed.serial, signed.request_id) == ("1700000000", "ABC", "rid")
    assert SignedHeaders.present(lowered)
    assert not SignedHeaders.present({})


def test_missing_headers_are_listed() -> None:
    partial = {k: v for k, v in HEADERS.items() if k != "Wechatpay-Nonce"}
    partial["Wechatpay-Serial"] = ""
    with pytest.raises(SignatureVerificationError, match="Wechatpay-Nonce, Wechatpay-Serial"):
        SignedHeaders.from_headers(partial)


def test_probe_and_unknown_algorithm_are_refused_before_key_lookup() -> None:
    probe = dict(HEADERS, **{"Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"})
    with pytest.raises(SignatureProbeError):
        SignedHeaders.from_headers(probe).check_basic()
    sm2 = dict(HEADERS, **{"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"})
    with pytest.raises(SignatureVerificationError, match="Signature-Type"):
        SignedHeaders.from_headers(sm2).check_basic()
    SignedHeaders.from_headers(
        dict(HEADERS, **{"Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"})
    ).check_basic()


@pytest.mark.parametrize("offset", [-300, 300, -10_000, 10_000])
def test_timestamp_window_refuses_stale_and_future(offset: int) -> None:
    now = float(int(time.time()))
    signed = SignedHeaders.from_headers(
        dict(HEADERS, **{"Wechatpay-Timestamp": str(int(now) + offset)})
    )
    with pytest.raises(TimestampOutOfWindowError):
        check_timestamp(signed, 300, lambda: now)


def test_timestamp_inside_window_and_garbage() -> None:
    now = time.time()
    check_timestamp(
        SignedHeaders.from_headers(dict(HEADERS, **{"Wechatpay-Timestamp": str(int(now) - 299)})),
        300,
        lambda: now,
    )
    with pytest.raises(SignatureVerificationError, match="integer"):
        check_timestamp(
            SignedHeaders.from_headers(dict(HEADERS, **{"Wechatpay-Timestamp": "soon"})), 300
        )


def test_verify_signature_rejects_garbage_base64() -> None:
    public = load_public_key(vector_file("tv1_certificate.pem"))
    assert not verify_signature(public, b"x", "%%%not-base64")


def test_key_loading_errors_do_not_echo_input() -> None:
    secretish = b"-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ValidationError) as info:
        load_private_key(secretish)
    assert "TOPSECRET" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    with pytest.raises(ValidationError, match="certificate"):
        load_certificate("nope")
    with pytest.raises(ValidationError, match="public_key"):
        load_public_key(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")


def test_small_and_non_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValidationError, match="2048"):
        load_private_key(pem)
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValidationError, match="RSA"):
        load_public_key(ec_public)


def test_loaded_objects_pass_through() -> None:
    key = load_private_key(vector_file("tv1_private_key.pem"))
    assert load_private_key(key) is key
    cert = load_certificate(vector_file("tv1_certificate.pem"))
    assert load_certificate(cert) is cert
    public = load_public_key(vector_file("tv1_certificate.pem"))
    assert load_public_key(public) is public


def test_nonces_are_random_alphanumerics() -> None:
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) == 32 and n.isalnum() and n.isascii() for n in nonces)


def test_aead_refuses_a_bad_key_length() -> None:
    with pytest.raises(DecryptionError, match="16, 24 or 32"):
        aead_decrypt(b"short", "n" * 12, "", "AAAAAAAAAAAAAAAAAAAAAA==")


@pytest.mark.parametrize(("nonce", "aad"), [("short", ""), ("n" * 12, "\ud800")])
def test_aead_malformed_nonce_or_aad_is_a_decryption_error(nonce: str, aad: str) -> None:
    with pytest.raises(DecryptionError, match="malformed"):
        aead_decrypt(b"k" * 32, nonce, aad, "AAAAAAAAAAAAAAAAAAAAAA==")
