"""Loading RSA keys and certificates, with errors that name the field and never echo key bytes."""

from __future__ import annotations

from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from .._errors import ValidationError

__all__ = [
    "certificate_serial",
    "load_certificate",
    "load_private_key",
    "load_public_key",
    "parse_serial",
]

_RSAKey = TypeVar("_RSAKey", RSAPrivateKey, RSAPublicKey)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
#: RFC 5280 serials are at most 20 octets (40 digits); room for a written-out leading zero byte.
_MAX_SERIAL_DIGITS = 64


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("ascii", "replace") if isinstance(value, str) else value


def load_private_key(
    pem: str | bytes | RSAPrivateKey, *, field: str = "private_key"
) -> RSAPrivateKey:
    """Parse an RSA private key (PKCS#8 or PKCS#1 PEM) or pass an already loaded one through."""
    if isinstance(pem, RSAPrivateKey):
        return _sized(pem, field)
    try:
        key = serialization.load_pem_private_key(_as_bytes(pem), password=None)
    except (ValueError, TypeError):
        # `from None`: the parser's own message and traceback could quote key material.
        raise ValidationError(field, "must be an unencrypted RSA private key in PEM form") from None
    except UnsupportedAlgorithm:  # an SM2 (national-crypto) key, say
        raise ValidationError(field, _NOT_RSA) from None
    if not isinstance(key, RSAPrivateKey):
        raise ValidationError(field, _NOT_RSA)
    return _sized(key, field)


_NOT_RSA = "must be an RSA key (WeChat Pay v3 uses RSA-2048; SM2 and others are not supported)"


def _sized(key: _RSAKey, field: str) -> _RSAKey:
    if key.key_size < 2048:
        raise ValidationError(field, f"RSA key must be at least 2048 bits, got {key.key_size}")
    return key


def load_certificate(
    pem: str | bytes | x509.Certificate, *, field: str = "certificate"
) -> x509.Certificate:
    """Parse a PEM X.509 certificate."""
    if isinstance(pem, x509.Certificate):
        return pem
    try:
        return x509.load_pem_x509_certificate(_as_bytes(pem))
    except (ValueError, TypeError):
        raise ValidationError(field, "must be an X.509 certificate in PEM form") from None


def load_public_key(pem: str | bytes | RSAPublicKey, *, field: str = "public_key") -> RSAPublicKey:
    """Parse an RSA public key from a ``PUBLIC KEY`` PEM or a certificate PEM."""
    if isinstance(pem, RSAPublicKey):
        return _sized(pem, field)
    key: object
    try:
        raw = _as_bytes(pem)
        if b"CERTIFICATE" in raw:
            key = x509.load_pem_x509_certificate(raw).public_key()
        else:
            key = serialization.load_pem_public_key(raw)
    except (ValueError, TypeError):
        raise ValidationError(
            field, "must be an RSA public key or certificate in PEM form"
        ) from None
    except UnsupportedAlgorithm:
        raise ValidationError(field, _NOT_RSA) from None
    if not isinstance(key, RSAPublicKey):
        raise ValidationError(field, _NOT_RSA)
    return _sized(key, field)


def certificate_serial(cert: x509.Certificate) -> str:
    """The serial as upper-case hex without leading zeros (compare with :func:`parse_serial`)."""
    return format(cert.serial_number, "X")


def parse_serial(serial: str) -> int | None:
    """The number a hexadecimal certificate serial denotes; ``None`` if ``serial`` is not one.

    Serials are compared as numbers: ``0A1B``, ``A1B`` and ``a1b`` name the same certificate
    (the Go SDK writes the serial's bytes, so a leading zero stays; others write the number).
    Only hex digits count: no sign, ``0x``, underscores or spaces, which ``int()`` would accept.
    """
    if not serial or len(serial) > _MAX_SERIAL_DIGITS or not _HEX_DIGITS.issuperset(serial):
        return None
    return int(serial, 16)
