"""AEAD_AES_256_GCM, as used for platform certificates and notification resources (spec §B5)."""

from __future__ import annotations

import base64
import binascii
import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import DecryptionError

__all__ = ["ALGORITHM", "decrypt", "encrypt"]

ALGORITHM = "AEAD_AES_256_GCM"


@functools.lru_cache(maxsize=8)
def _cipher(key: bytes) -> AESGCM:
    # Cached: the key schedule is a third of decrypting a notification resource. The few keys
    # held here are APIv3 keys the credentials object holds anyway.
    try:
        return AESGCM(key)
    except ValueError:
        raise DecryptionError("AES-GCM key must be 16, 24 or 32 bytes") from None


def decrypt(key: bytes, nonce: str, associated_data: str | None, ciphertext_b64: str) -> bytes:
    """Decrypt Base64(ciphertext ‖ 16-byte tag); the nonce and AAD are UTF-8 strings.

    The APIv3 key is 32 bytes; shorter AES keys are accepted here only because the official
    Go SDK's own vector uses one (the credentials object enforces 32 bytes).
    """
    if not (
        type(nonce) is str
        and type(ciphertext_b64) is str
        and (associated_data is None or type(associated_data) is str)
    ):
        # Read from JSON before any signature is checked (a certificate list): a number or
        # null there is a malformed ciphertext, not a crash.
        raise DecryptionError("AES-GCM nonce, associated data and ciphertext must be strings")
    try:
        # strict_mode: the alphabet only, padding only at the end (b64decode(validate=True)
        # refuses the same inputs through a regex first, ~0.5 µs slower on a resource).
        data = binascii.a2b_base64(ciphertext_b64, strict_mode=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("ciphertext is not valid Base64") from None
    if len(data) < 16:
        raise DecryptionError("ciphertext is shorter than the 16-byte GCM tag")
    cipher = _cipher(key)
    try:
        aad = associated_data.encode() if associated_data else None
        return cipher.decrypt(nonce.encode(), data, aad)
    except InvalidTag:
        raise DecryptionError(
            "AES-GCM authentication failed (wrong APIv3 key, or altered ciphertext/nonce/AAD)"
        ) from None
    except (ValueError, UnicodeEncodeError):
        # A nonce outside 8-128 bytes, or text that is not valid UTF-8 (lone surrogates).
        raise DecryptionError("AES-GCM nonce or associated data is malformed") from None


def encrypt(key: bytes, nonce: str, associated_data: str | None, plaintext: bytes) -> str:
    """Inverse of :func:`decrypt` (used by the sandbox and tests)."""
    aad = associated_data.encode() if associated_data else None
    return base64.b64encode(_cipher(key).encrypt(nonce.encode(), plaintext, aad)).decode("ascii")
