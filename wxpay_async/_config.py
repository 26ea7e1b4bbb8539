"""Client configuration: merchant credentials, hosts and the retry policy."""

from __future__ import annotations

import math
import os
import random
import time
from binascii import b2a_base64
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ._errors import ValidationError
from ._validation import seconds
from .crypto import load_private_key
from .crypto.signing import AUTH_SCHEMA, PKCS1, SHA256

__all__ = ["HostName", "Hosts", "MerchantCredentials", "RetryPolicy"]

HostName = Literal["mainland", "mainland_backup", "global_", "weixin"]


@attrs.define(frozen=True, repr=False, eq=False, init=False)
class MerchantCredentials:
    """Who we are: the calling merchant's mchid, API certificate serial, private key and APIv3 key.

    Validated at construction (``ValidationError`` names the field); ``repr()`` shows no secret.
    """

    mchid: str
    serial_no: str
    private_key: RSAPrivateKey
    _apiv3_key: bytes
    #: The Authorization header's fixed parts, built once (``format_authorization``'s order).
    _header_head: str = attrs.field(init=False)
    _header_serial: str = attrs.field(init=False)

    def __init__(
        self,
        *,
        mchid: str,
        serial_no: str,
        private_key: str | bytes | RSAPrivateKey,
        apiv3_key: str | bytes,
    ) -> None:
        # Both go into the Authorization header as quoted parameters: a quote, comma or line
        # break would add parameters (or headers) to every signed request.
        if not isinstance(mchid, str) or not _alphanumeric(mchid.strip()):
            raise ValidationError("mchid", "must be the merchant ID (ASCII letters and digits)")
        if not isinstance(serial_no, str) or not _hexadecimal(serial_no.strip()):
            raise ValidationError(
                "serial_no", "must be the API certificate serial (hexadecimal digits)"
            )
        key_bytes = _apiv3_key_bytes(apiv3_key)
        object.__setattr__(self, "mchid", mchid.strip())
        object.__setattr__(self, "serial_no", serial_no.strip().upper())
        object.__setattr__(self, "private_key", load_private_key(private_key))
        object.__setattr__(self, "_apiv3_key", key_bytes)
        object.__setattr__(self, "_header_head", f'{AUTH_SCHEMA} mchid="{self.mchid}",nonce_str="')
        object.__setattr__(self, "_header_serial", f'",serial_no="{self.serial_no}",signature="')

    @property
    def apiv3_key(self) -> bytes:
        """The 32-byte APIv3 key (AES-256-GCM key for certificates and notifications)."""
        return self._apiv3_key

    @classmethod
    def from_files(
        cls,
        *,
        mchid: str,
        serial_no: str,
        private_key_path: str | os.PathLike[str],
        apiv3_key: str | bytes | None = None,
        apiv3_key_env: str | None = None,
    ) -> MerchantCredentials:
        """Read the private key from a PEM file; the APIv3 key directly or from an env variable."""
        pem = read_file(Path(private_key_path), "private_key_path")
        if apiv3_key is None:
            if not apiv3_key_env:
                raise ValidationError("apiv3_key", "give apiv3_key or apiv3_key_env")
            apiv3_key = os.environ.get(apiv3_key_env)
            if apiv3_key is None:
                raise ValidationError(
                    "apiv3_key_env", f"environment variable {apiv3_key_env} is not set"
                )
        return cls(mchid=mchid, serial_no=serial_no, private_key=pem, apiv3_key=apiv3_key)

    def authorization(self, method: str, canonical_url: str, body: bytes, timestamp: int) -> str:
        """A fresh ``Authorization`` header for one request on the wire (spec §B1).

        Once per request attempt, so it is written flat: a 32-hex-digit nonce, the message
        ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` and the header around parts built
        at construction. ``crypto.build_request_message``, ``crypto.sign`` and
        ``crypto.format_authorization`` spell out the same steps one by one (and the tests pin
        this method to them).
        """
        nonce = os.urandom(16).hex()
        message = f"{method.upper()}\n{canonical_url}\n{timestamp}\n{nonce}\n".encode() + body
        signature = b2a_base64(self.private_key.sign(message + b"\n", PKCS1, SHA256), newline=False)
        return (
            f'{self._header_head}{nonce}",timestamp="{timestamp}'
            f'{self._header_serial}{signature.decode()}"'
        )

    def __repr__(self) -> str:
        return (
            f"MerchantCredentials(mchid={self.mchid!r}, serial_no={self.serial_no!r}, "
            "<secrets hidden>)"
        )

    __str__ = __repr__

    def __getstate__(self) -> None:
        raise TypeError("MerchantCredentials holds secrets and is not picklable")


def _alphanumeric(value: str) -> bool:
    return value.isascii() and value.isalnum()


def read_file(path: Path, field: str) -> bytes:
    """The bytes of a key or certificate file; ``ValidationError(field)`` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValidationError(field, f"cannot read {path}: {exc.strerror}") from None


def _apiv3_key_bytes(apiv3_key: object) -> bytes:
    # 32 ASCII characters (§B5). bytes(32) would be a zero key and bytes([..]) a list's.
    if isinstance(apiv3_key, str):
        if not apiv3_key.isascii():
            raise ValidationError("apiv3_key", "must be 32 ASCII characters")
        key_bytes = apiv3_key.encode()
    elif isinstance(apiv3_key, (bytes, bytearray)):
        key_bytes = bytes(apiv3_key)
    else:
        raise ValidationError(
            "apiv3_key", f"must be a str or bytes of 32 characters, got {type(apiv3_key).__name__}"
        )
    if len(key_bytes) != 32:
        raise ValidationError("apiv3_key", f"must be exactly 32 bytes (got {len(key_bytes)})")
    return key_bytes


def _hexadecimal(value: str) -> bool:
    return bool(value) and all(ch in _HEX_DIGITS for ch in value)


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _url(value: object) -> object:
    return value.rstrip("/") if isinstance(value, str) else value


def _base_url(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Checked here, not at the first call (where a bad URL is a TransportError naming nothing).
    rule = "must be an http(s) base URL such as https://api.mch.weixin.qq.com"
    if not isinstance(value, str):
        raise ValidationError(f"hosts.{attribute.name}", rule)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValidationError(f"hosts.{attribute.name}", rule)


@attrs.frozen(kw_only=True)
class Hosts:
    """Base URLs of the four WeChat hosts; ``Hosts.single(url)`` points them all at one server.

    A path in a base URL (``https://gateway.example/wechat``) is put in front of every request
    path and is not signed: the signature covers the path WeChat receives (``/v3/...``), so
    such a base fits a forwarding proxy that strips its prefix, and nothing else.
    """

    mainland: str = attrs.field(
        default="https://api.mch.weixin.qq.com", converter=_url, validator=_base_url
    )
    mainland_backup: str = attrs.field(
        default="https://api2.mch.weixin.qq.com", converter=_url, validator=_base_url
    )
    global_: str = attrs.field(
        default="https://apihk.mch.weixin.qq.com", converter=_url, validator=_base_url
    )
    weixin: str = attrs.field(
        default="https://api.weixin.qq.com", converter=_url, validator=_base_url
    )
    #: On a connection failure (nothing sent) to ``mainland``, try ``mainland_backup`` once.
    #: Off by default, as in the official SDKs; never applies to apihk or api.weixin.qq.com.
    failover: bool = False

    @classmethod
    def single(cls, url: str) -> Hosts:
        """Every host at ``url`` (a sandbox or test server)."""
        return cls(mainland=url, mainland_backup=url, global_=url, weixin=url)

    def __attrs_post_init__(self) -> None:
        if self.failover and self.mainland_backup == self.mainland:
            # It could never do anything: refused rather than quietly switched off.
            raise ValidationError("failover", "needs a mainland_backup other than mainland")

    def base(self, name: HostName) -> str:
        """The base URL for a host name."""
        return str(getattr(self, name))


def _attempts(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 1:
        raise ValidationError(attribute.name, "must be an integer >= 1")


def _wait(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    seconds(attribute.name, value, zero_ok=True)


def _deadline(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # NaN would end every call before its first request; a negative one, likewise.
    if value is not None:
        seconds(attribute.name, value)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long to wait between attempts of one call.

    The wait before attempt ``n + 1`` is
    ``min(wait_max, wait_initial * 2**(n-1) + U(0, wait_jitter))``; after a server-sent
    ``Retry-After`` it is ``min(wait_max, retry_after + U(0, wait_jitter))`` (the jitter keeps
    the callers that were refused together from coming back together). ``deadline`` caps the
    whole call (attempts, waits, a failover) in seconds. A retry starts only if at least
    ``min_attempt_time`` seconds of the deadline (at most a quarter of it, so that a short
    deadline still leaves room for retries) are left after its wait: an attempt cut shorter
    than that would mostly end in a timeout, which on an endpoint that is not safe to retry
    turns a clear refusal (a 429, say) into an unknown outcome; the last answer or error is
    returned instead. ``sleep=False`` removes waiting (tests).
    """

    attempts: int = attrs.field(default=4, validator=_attempts)
    wait_initial: float = attrs.field(default=0.2, validator=_wait)
    wait_max: float = attrs.field(default=5.0, validator=_wait)
    wait_jitter: float = attrs.field(default=0.3, validator=_wait)
    deadline: float | None = attrs.field(default=30.0, validator=_deadline)
    min_attempt_time: float = attrs.field(default=1.0, validator=_wait)
    sleep: bool = True

    def wait_before(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if not self.sleep:
            return 0.0
        if retry_after is not None:
            backoff = max(0.0, retry_after) + random.uniform(0, self.wait_jitter)
        else:
            backoff = self.wait_initial * 2.0 ** (attempt - 1) + random.uniform(0, self.wait_jitter)
        return float(min(self.wait_max, backoff))

    @property
    def attempt_minimum(self) -> float:
        """The time a retry needs left to start: ``min_attempt_time``, at most deadline / 4."""
        if self.deadline is None:
            return self.min_attempt_time
        return min(self.min_attempt_time, self.deadline / 4)

    def time_left(self, started: float) -> float:
        """Seconds left before the deadline of a call started at ``started``
        (``time.monotonic()``); infinite without a deadline."""
        if self.deadline is None:
            return math.inf
        return self.deadline - (time.monotonic() - started)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A single attempt, no retries."""
        return cls(attempts=1)
