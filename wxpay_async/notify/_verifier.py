"""NotificationVerifier: signature, replay window and AES-GCM decryption of a notification.

Processing order (spec §B8, after wechatpay-go ``core/notify``): cheap header checks first
(missing headers, ``WECHATPAY/SIGNTEST/`` probes, unknown ``Wechatpay-Signature-Type``, the
timestamp window), so forged or stale deliveries never trigger a certificate download; then the
RSA signature over the raw body bytes exactly as received; only then is the body parsed and the
resource decrypted.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .._converter import loads_utf8, parse_rfc3339
from .._errors import (
    DecryptionError,
    MalformedNotificationError,
    SignatureVerificationError,
    UnknownSerialError,
    ValidationError,
)
from ..crypto import (
    AEAD_ALGORITHM,
    SignedHeaders,
    aead_decrypt,
)
from ._checks import check_clock, seconds
from ._headers import HeadersLike, as_header_mapping
from ._model import Notification
from ._registry import EventRegistry, ResourceModel

if TYPE_CHECKING:
    from .._client import WxPayClient

__all__ = [
    "NotificationVerifier",
    "ShortAPIv3KeyWarning",
    "UnsupportedAlgorithmError",
    "VerificationKeys",
]

#: The notification ID is the inbox key; WeChat documents string[1,36]. Anything much longer
#: is not a WeChat notification and must not reach the stores.
_MAX_ID_LENGTH = 128


class VerificationKeys(Protocol):
    """What the verifier needs from a trust (``PublicKeyTrust``, ``CertificateTrust``, ...)."""

    async def verification_key(self, serial: str) -> RSAPublicKey:
        """The key for ``Wechatpay-Serial``; raises :class:`UnknownSerialError`."""
        ...


class ShortAPIv3KeyWarning(UserWarning):
    """The APIv3 key is 16 or 24 bytes; real APIv3 keys are 32 (only test vectors are shorter)."""


class UnsupportedAlgorithmError(DecryptionError, MalformedNotificationError):
    """``resource.algorithm`` is not ``AEAD_AES_256_GCM``: nothing we can decrypt or trust."""


def _api_key_bytes(apiv3_key: str | bytes, allow_short_key: bool) -> bytes:
    if isinstance(apiv3_key, str):
        key = apiv3_key.encode()
    elif isinstance(apiv3_key, (bytes, bytearray)):
        key = bytes(apiv3_key)
    else:
        raise ValidationError("apiv3_key", "must be str or bytes")
    if len(key) == 32:
        return key
    if len(key) in (16, 24):
        if not allow_short_key:
            warnings.warn(
                f"APIv3 key is {len(key)} bytes; WeChat Pay issues 32-byte keys. "
                "Pass allow_short_key=True if this is intended (test vectors).",
                ShortAPIv3KeyWarning,
                stacklevel=3,
            )
        return key
    raise ValidationError("apiv3_key", f"must be 32 bytes (got {len(key)})")


class NotificationVerifier:
    """Verifies and decrypts WeChat Pay notifications (spec §B8, §B9, §A2.4, §A3.4).

    ``apiv3_key`` is the merchant's 32-byte APIv3 key (``str`` or ``bytes``). A 16- or 24-byte
    key (AES-128/192, as in the official Go SDK's test vector) is accepted with a
    :class:`ShortAPIv3KeyWarning`, silenced by ``allow_short_key=True``; a wrong key cannot
    cause a false accept, only :class:`DecryptionError`. ``trust`` supplies the key for each
    ``Wechatpay-Serial`` (a ``CertificateTrust`` bound to a client refreshes once on an unknown
    serial). ``window`` is the replay tolerance in seconds (finite, > 0), applied to stale
    *and* future timestamps; ``clock`` returns Unix seconds. ``registry`` (an
    :class:`EventRegistry`) is copied; the default maps the built-in event types. A decrypted
    resource that does not fit its registered model is delivered as the plain mapping (with a
    warning), or refused with :class:`MalformedNotificationError` when
    ``strict_resources=True``.
    """

    def __init__(
        self,
        *,
        apiv3_key: str | bytes,
        trust: VerificationKeys,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
        allow_short_key: bool = False,
        strict_resources: bool = False,
        registry: EventRegistry | None = None,
    ) -> None:
        if not callable(getattr(trust, "verification_key", None)):
            raise ValidationError("trust", "must provide verification_key(serial)")
        self.window = seconds("window", window)
        self._clock = check_clock(clock)
        if registry is not None and not isinstance(registry, EventRegistry):
            raise ValidationError("registry", "must be an EventRegistry or None")
        self._apiv3_key = _api_key_bytes(apiv3_key, allow_short_key)
        self.trust = trust
        self.strict_resources = strict_resources
        self.registry = registry.copy() if registry is not None else EventRegistry.default()

    @classmethod
    def from_client(cls, client: WxPayClient, **options: Any) -> NotificationVerifier:
        """A verifier sharing ``client``'s APIv3 key and trust (certificates refresh through it)."""
        return cls(apiv3_key=client.credentials.apiv3_key, trust=client.trust, **options)

    def register(self, event_type: str, model: ResourceModel) -> None:
        """Deliver ``event_type`` resources (``"PREFIX.*"`` for a prefix) as ``model``.

        ``model`` is an attrs class (built through ``wxpay_async.converter``) or a callable
        taking the decrypted ``dict``. Exact names win over prefixes, longer prefixes first.
        """
        self.registry.register(event_type, model)

    async def parse(self, headers: HeadersLike, body: bytes) -> Notification:
        """Verify, decrypt and type one notification; ``body`` is the raw request body.

        ``headers`` is any mapping (looked up case-insensitively) or ``(name, value)`` pairs;
        anything else, or a ``body`` that is not bytes, raises :class:`ValidationError`.
        Raises :class:`SignatureVerificationError` (missing headers, bad signature, unknown
        ``Wechatpay-Signature-Type``) or its subclasses :class:`SignatureProbeError`
        (``WECHATPAY/SIGNTEST/``), :class:`TimestampOutOfWindowError`,
        :class:`UnknownSerialError`; :class:`DecryptionError` (wrong APIv3 key, altered
        resource); :class:`MalformedNotificationError` (verified but unusable JSON).
        Doc: https://pay.weixin.qq.com/doc/global/v3/en/4012357020
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise ValidationError("body", "must be the raw request body bytes, not decoded text")
        raw = bytes(body)
        signed = SignedHeaders.checked(as_header_mapping(headers), self.window, self._clock)
        key = await self._key_for(signed)
        if not signed.verifies(key, raw):
            raise SignatureVerificationError(
                "notification signature does not verify", request_id=signed.request_id
            )
        return self._open(raw, signed)

    async def _key_for(self, signed: SignedHeaders) -> RSAPublicKey:
        try:
            return await self.trust.verification_key(signed.serial)
        except UnknownSerialError as exc:
            if exc.request_id is not None or signed.request_id is None:
                raise
            raise UnknownSerialError(exc.reason, request_id=signed.request_id) from None

    def _open(self, raw: bytes, signed: SignedHeaders) -> Notification:
        envelope = _load_object(raw, "body")
        notification_id = _required_text(envelope, "id")
        if len(notification_id) > _MAX_ID_LENGTH:
            raise MalformedNotificationError(f"id is longer than {_MAX_ID_LENGTH} characters")
        event_type = _required_text(envelope, "event_type")
        try:
            create_time = parse_rfc3339(_required_text(envelope, "create_time"))
        except ValidationError:
            raise MalformedNotificationError("create_time is not an RFC 3339 date-time") from None
        resource = envelope.get("resource")
        if not isinstance(resource, dict):
            raise MalformedNotificationError("resource is missing or not an object")
        algorithm = resource.get("algorithm")
        if algorithm != AEAD_ALGORITHM:
            shown = repr(algorithm)[:40]
            raise UnsupportedAlgorithmError(f"unsupported resource.algorithm {shown}")
        ciphertext = _required_text(resource, "ciphertext", "resource.")
        nonce = _required_text(resource, "nonce", "resource.")
        associated_data = _optional_text(resource, "associated_data", "resource.")
        try:
            plaintext = aead_decrypt(self._apiv3_key, nonce, associated_data or "", ciphertext)
        except ValueError:
            # A nonce outside AES-GCM's 8..128 bytes, or text that is not encodable as UTF-8
            # (lone surrogates): refused before any tag check.
            raise DecryptionError(
                "resource.nonce or associated_data unusable for AES-GCM"
            ) from None
        data = _load_object(plaintext, "decrypted resource")
        return Notification(
            id=notification_id,
            create_time=create_time,
            event_type=event_type,
            resource_type=_optional_text(envelope, "resource_type") or "",
            summary=_optional_text(envelope, "summary"),
            resource=self.registry.build(event_type, data, strict=self.strict_resources),
            original_type=_optional_text(resource, "original_type", "resource."),
            request_id=signed.request_id,
            serial=signed.serial,
        )

    def __repr__(self) -> str:
        return f"NotificationVerifier(trust={self.trust!r}, window={self.window})"

    def __getstate__(self) -> None:
        raise TypeError("NotificationVerifier holds the APIv3 key and is not picklable")


def _load_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = loads_utf8(raw)
    except ValueError:  # includes UnicodeDecodeError
        raise MalformedNotificationError(f"{what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedNotificationError(f"{what} is not a JSON object")
    return document


def _required_text(obj: dict[str, Any], name: str, path: str = "") -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedNotificationError(f"{path}{name} is missing or not a non-empty string")
    return value


def _optional_text(obj: dict[str, Any], name: str, path: str = "") -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedNotificationError(f"{path}{name} is not a string")
    return value
