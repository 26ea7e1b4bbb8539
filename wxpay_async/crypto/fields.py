"""Sensitive-field encryption with the platform key, and decryption with the merchant key (§B7)."""

from __future__ import annotations

import base64
import binascii
import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from .._errors import DecryptionError

__all__ = ["Padding", "decrypt_field", "encrypt_field", "max_plaintext_bytes"]


class Padding(enum.StrEnum):
    """RSA encryption padding; chosen per endpoint."""

    OAEP = "OAEP"  # RSAES-OAEP, SHA-1, MGF1-SHA-1, empty label: the v3 default
    PKCS1V15 = "PKCS1V15"  # RSAES-PKCS1-v1_5: what the HK onboarding seed specifies


#: The padding objects, built once (they hold no state): RSAES-OAEP with SHA-1 and MGF1-SHA-1.
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
_PKCS1V15 = padding.PKCS1v15()


def _padding(kind: Padding) -> padding.AsymmetricPadding:
    return _OAEP if kind is Padding.OAEP else _PKCS1V15


def encrypt_checked(public_key: RSAPublicKey, data: bytes, kind: Padding) -> str:
    """Base64 RSA ciphertext of ``data``, whose size the caller has already checked."""
    return base64.b64encode(public_key.encrypt(data, _padding(kind))).decode("ascii")


def max_plaintext_bytes(key_size_bits: int, kind: Padding) -> int:
    """Largest plaintext the padding allows: 214 bytes (OAEP-SHA1) or 245 (PKCS#1) for RSA-2048."""
    k = key_size_bits // 8
    return k - 2 * 20 - 2 if kind is Padding.OAEP else k - 11


def encrypt_field(public_key: RSAPublicKey, plaintext: str, kind: Padding = Padding.OAEP) -> str:
    """Base64 RSA ciphertext of the UTF-8 plaintext (randomized: encrypt once per request)."""
    data = plaintext.encode()
    limit = max_plaintext_bytes(public_key.key_size, kind)
    if len(data) > limit:
        # Callers validate first; this guards direct use without echoing the plaintext.
        raise ValueError(f"plaintext is {len(data)} bytes; {kind} allows at most {limit}")
    return encrypt_checked(public_key, data, kind)


def decrypt_field(
    private_key: RSAPrivateKey, ciphertext_b64: str, kind: Padding = Padding.OAEP
) -> str:
    """Decrypt a Base64 field encrypted to the merchant's public key."""
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
        return private_key.decrypt(data, _padding(kind)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise DecryptionError(f"field could not be decrypted with {kind} padding") from None
