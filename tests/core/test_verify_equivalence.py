"""verify_signature decides exactly as cryptography's RSASSA-PKCS1-v1_5 verify does.

verify_signature recovers the signed DigestInfo and compares it (encode-and-compare) instead of
calling ``public_key.verify``; these tests hold the two to the same answer on valid signatures,
on every way a signature can be wrong, and on random mutations.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from wxpay_async.crypto import verify_signature

PKCS1 = padding.PKCS1v15()


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def reference(public: RSAPublicKey, message: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, message, PKCS1, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def both(public: RSAPublicKey, message: bytes, signature: bytes) -> tuple[bool, bool]:
    ours = verify_signature(public, message, base64.b64encode(signature).decode())
    return ours, reference(public, message, signature)


def test_valid_signatures_verify_for_2048_and_4096_bit_keys(key: RSAPrivateKey) -> None:
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    for private in (key, big):
        message = b'1700000000\nnonce\n{"a":1}\n'
        signature = private.sign(message, PKCS1, hashes.SHA256())
        assert both(private.public_key(), message, signature) == (True, True)


def test_a_signature_missing_its_leading_zero_byte_is_refused(key: RSAPrivateKey) -> None:
    # RFC 8017 §8.2.2 step 1: the length must be the modulus length. OpenSSL's recovery alone
    # would accept the 255-byte form; verify() and Go's VerifyPKCS1v15 do not.
    message, signature = b"", b"\x01"
    for i in range(5000):
        message = f"message {i}".encode()
        signature = key.sign(message, PKCS1, hashes.SHA256())
        if signature[0] == 0:
            break
    assert signature[0] == 0, "no signature with a leading zero byte in 5,000 tries"
    assert both(key.public_key(), message, signature) == (True, True)
    assert both(key.public_key(), message, signature[1:]) == (False, False)
    assert both(key.public_key(), message, b"\x00" + signature) == (False, False)


def test_signatures_over_other_encodings_are_refused(key: RSAPrivateKey) -> None:
    public = key.public_key()
    message = b"the same message"
    digest = hashlib.sha256(message).digest()
    others = {
        "SHA-1 DigestInfo": key.sign(message, PKCS1, hashes.SHA1()),
        "SHA-512 DigestInfo": key.sign(message, PKCS1, hashes.SHA512()),
        "PSS": key.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()),
        "bare digest, no DigestInfo": _raw_pkcs1(key, digest),
        "DigestInfo without NULL parameters": _raw_pkcs1(
            key, bytes.fromhex("302f300b06096086480165030402010420") + digest
        ),
    }
    for name, signature in others.items():
        assert both(public, message, signature) == (False, False), name


def test_values_at_or_above_the_modulus_are_refused(key: RSAPrivateKey) -> None:
    public = key.public_key()
    n = public.public_numbers().n
    for value in (n, n + 1, 2**2048 - 1):
        assert both(public, b"m", value.to_bytes(256, "big")) == (False, False)
    assert both(public, b"m", b"\x00" * 256) == (False, False)


@settings(max_examples=200, deadline=None)
@given(
    message=st.binary(max_size=300),
    flip=st.integers(min_value=0, max_value=256 * 8 - 1),
    tamper_message=st.booleans(),
)
def test_random_mutations_get_the_same_answer(
    key: RSAPrivateKey, message: bytes, flip: int, tamper_message: bool
) -> None:
    public = key.public_key()
    signature = bytearray(key.sign(message, PKCS1, hashes.SHA256()))
    assert both(public, message, bytes(signature)) == (True, True)
    if tamper_message:
        altered = message + b"\n"
        assert both(public, altered, bytes(signature)) == (False, False)
    else:
        signature[flip // 8] ^= 1 << (flip % 8)
        ours, theirs = both(public, message, bytes(signature))
        assert ours == theirs
        assert not ours


def _raw_pkcs1(key: RSAPrivateKey, payload: bytes) -> bytes:
    """A PKCS#1 v1.5 type-1 signature over ``payload`` as is (no DigestInfo added)."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    encoded = b"\x00\x01" + b"\xff" * (k - 3 - len(payload)) + b"\x00" + payload
    return pow(int.from_bytes(encoded, "big"), numbers.d, n).to_bytes(k, "big")
