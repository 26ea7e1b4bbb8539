"""The v3 protocol's cryptography: signing, verification, AES-GCM and field encryption."""

from .aead import ALGORITHM as AEAD_ALGORITHM
from .aead import decrypt as aead_decrypt
from .aead import encrypt as aead_encrypt
from .fields import Padding, decrypt_field, encrypt_field, max_plaintext_bytes, padding_of
from .keys import certificate_serial, load_certificate, load_private_key, load_public_key
from .signing import (
    AUTH_SCHEMA,
    build_request_message,
    format_authorization,
    new_nonce,
    parse_authorization,
    sign,
)
from .verify import (
    PROBE_PREFIX,
    SIGNATURE_TYPE,
    SignedHeaders,
    build_response_message,
    check_timestamp,
    verify_signature,
)

__all__ = [
    "AEAD_ALGORITHM",
    "AUTH_SCHEMA",
    "PROBE_PREFIX",
    "SIGNATURE_TYPE",
    "Padding",
    "SignedHeaders",
    "aead_decrypt",
    "aead_encrypt",
    "build_request_message",
    "build_response_message",
    "certificate_serial",
    "check_timestamp",
    "decrypt_field",
    "encrypt_field",
    "format_authorization",
    "load_certificate",
    "load_private_key",
    "load_public_key",
    "max_plaintext_bytes",
    "new_nonce",
    "padding_of",
    "parse_authorization",
    "sign",
    "verify_signature",
]
