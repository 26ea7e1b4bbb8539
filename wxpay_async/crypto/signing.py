"""Request signing: the ``WECHATPAY2-SHA256-RSA2048`` Authorization header (spec §B1)."""

from __future__ import annotations

import base64
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "AUTH_SCHEMA",
    "build_request_message",
    "format_authorization",
    "new_nonce",
    "parse_authorization",
    "sign",
]

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
PKCS1 = padding.PKCS1v15()
SHA256 = hashes.SHA256()


def build_request_message(
    method: str, canonical_url: str, timestamp: int | str, nonce: str, body: bytes
) -> bytes:
    """``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` as bytes.

    ``canonical_url`` must be the exact path and raw query sent on the wire, ``body`` the exact
    bytes sent (the meta JSON for uploads).
    """
    head = f"{method.upper()}\n{canonical_url}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def sign(private_key: RSAPrivateKey, message: bytes) -> str:
    """Base64 RSASSA-PKCS1-v1_5 SHA-256 signature of ``message``."""
    return base64.b64encode(private_key.sign(message, PKCS1, SHA256)).decode("ascii")


def new_nonce(length: int = 32) -> str:
    """A random ``[0-9a-f]`` string of ``length`` characters (32 by default, as the SDKs send).

    Hex is a subset of the ``[0-9A-Za-z]`` alphabet WeChat documents, and ``token_hex`` costs
    about 1 µs where 32 ``secrets.choice`` calls cost about 50 (once per request attempt).
    """
    return secrets.token_hex((length + 1) // 2)[:length]


def format_authorization(
    *, mchid: str, serial_no: str, nonce: str, timestamp: int | str, signature: str
) -> str:
    """The ``Authorization`` header value."""
    return (
        f'{AUTH_SCHEMA} mchid="{mchid}",nonce_str="{nonce}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}",signature="{signature}"'
    )


def parse_authorization(value: str) -> tuple[str, dict[str, str]]:
    """Split an Authorization header into its schema and parameters (any order).

    Raises :class:`ValueError` on a malformed header.
    """
    schema, sep, rest = value.strip().partition(" ")
    if not sep:
        raise ValueError("Authorization has no parameters")
    params: dict[str, str] = {}
    for item in _split_params(rest):
        key, eq, raw = item.partition("=")
        key = key.strip()
        raw = raw.strip()
        if not eq or not key or len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
            raise ValueError(f"malformed Authorization parameter {key!r}")
        if key in params:
            raise ValueError(f"duplicate Authorization parameter {key!r}")
        params[key] = raw[1:-1]
    return schema, params


def _split_params(rest: str) -> list[str]:
    # Values are quoted and never contain '"'; commas inside quotes (none in practice) are kept.
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in rest:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        items.append("".join(current))
    return [item for item in items if item.strip()]
