"""Sensitive-field encryption with the platform key, and decryption with the merchant key (§B7)."""

from __future__ import annotations

import base64
import binascii
import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from .._errors import DecryptionError, ValidationError
from .._validation import is_printable_text

__all__ = ["Padding", "decrypt_field", "encrypt_field", "max_plaintext_bytes", "padding_of"]


class Padding(enum.StrEnum):
    """RSA encryption padding; chosen per endpoint."""

    OAEP = "OAEP"  # RSAES-OAEP, SHA-1, MGF1-SHA-1, empty label: the v3 default
    PKCS1V15 = "PKCS1V15"  # RSAES-PKCS1-v1_5: what the HK onboarding seed specifies


#: The padding objects, built once (they hold no state): RSAES-OAEP with SHA-1 and MGF1-SHA-1.
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
_PKCS1V15 = padding.PKCS1v15()


def padding_of(kind: object) -> Padding:
    """``kind`` as a :class:`Padding` (``"OAEP"`` and ``"PKCS1V15"`` too); else ValidationError.

    Compared by identity afterwards: a plain string equal to a member is not the member, and
    would otherwise select PKCS#1 v1.5 for ``"OAEP"``.
    """
    if type(kind) is Padding:
        return kind
    if isinstance(kind, str) and kind in _PADDINGS:
        return Padding(kind)
    raise ValidationError("padding", "must be Padding.OAEP or Padding.PKCS1V15")


_PADDINGS = frozenset(Padding)


def _padding(kind: Padding) -> padding.AsymmetricPadding:
    return _OAEP if padding_of(kind) is Padding.OAEP else _PKCS1V15


def encrypt_checked(public_key: RSAPublicKey, data: bytes, kind: Padding) -> str:
    """Base64 RSA ciphertext of ``data``, whose size the caller has already checked."""
    return base64.b64encode(public_key.encrypt(data, _padding(kind))).decode("ascii")


def max_plaintext_bytes(key_size_bits: int, kind: Padding) -> int:
    """Largest plaintext the padding allows: 214 bytes (OAEP-SHA1) or 245 (PKCS#1) for RSA-2048."""
    k = key_size_bits // 8
    return k - 2 * 20 - 2 if padding_of(kind) is Padding.OAEP else k - 11


def encrypt_field(public_key: RSAPublicKey, plaintext: str, kind: Padding = Padding.OAEP) -> str:
    """Base64 RSA ciphertext of the UTF-8 plaintext (randomized: encrypt once per request)."""
    kind = padding_of(kind)
    if not isinstance(plaintext, str):
        raise ValidationError("plaintext", f"must be a str, got {type(plaintext).__name__}")
    try:
        data = plaintext.encode()
    except UnicodeEncodeError:  # a lone surrogate; the exception would quote the plaintext
        raise ValidationError("plaintext", "must be valid Unicode text") from None
    limit = max_plaintext_bytes(public_key.key_size, kind)
    if len(data) > limit:
        # Callers validate first; this guards direct use without echoing the plaintext.
        raise ValidationError(
            "plaintext", f"is {len(data)} bytes as UTF-8; {kind} allows at most {limit}"
        )
    return encrypt_checked(public_key, data, kind)


def decrypt_field(
    private_key: RSAPrivateKey, ciphertext_b64: str, kind: Padding = Padding.OAEP
) -> str:
    """Decrypt a Base64 field encrypted to the merchant's public key.

    PKCS#1 v1.5 cannot always tell a wrong key or an altered ciphertext: OpenSSL 3.2 and later
    answer a bad padding with pseudo-random bytes ("implicit rejection", against Bleichenbacher
    attacks) instead of an error. Such a result is refused as :class:`DecryptionError` when it
    is empty, not UTF-8 or not printable text (spaces of every kind allowed), which the fields
    WeChat encrypts (names, phone numbers, e-mail and ID numbers) always are. That catches
    most, not all: about 1 in 400 wrong-key decryptions still yields a short printable string
    (measured: 50 and 56 of 20,000).
    Check the value's format where it has one; fields encrypted together fail together
    (``hk_merchants.get_submerchant`` refuses the answer if any of its three does not
    decrypt, so a wrong key passes unnoticed about once in 60 million). OAEP has no such gap.
    """
    kind = padding_of(kind)
    failed = f"field could not be decrypted with {kind} padding"
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
        text = private_key.decrypt(data, _padding(kind)).decode()
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise DecryptionError(failed) from None
    if kind is Padding.PKCS1V15 and (not text or not is_printable_text(text)):
        raise DecryptionError(failed)
    return text
