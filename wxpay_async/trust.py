"""Whom we trust: the WeChat Pay public key, platform certificates, or both during a migration.

A trust object answers two questions for the rest of the library:

* which public key verifies a response or notification signed under ``Wechatpay-Serial``;
* which key (and serial, sent as ``Wechatpay-Serial``) encrypts sensitive request fields.

Platform certificates are authenticated by decryption: AES-GCM under the APIv3 key, which only
WeChat Pay and the merchant hold. The certificate list's own response signature is therefore
checked against a certificate from that same download (after a rotation, no client holds the
new signing certificate yet).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal, Protocol

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._errors import (
    DecryptionError,
    SignatureVerificationError,
    UnknownSerialError,
    ValidationError,
)
from .crypto import (
    AEAD_ALGORITHM,
    SignedHeaders,
    aead_decrypt,
    certificate_serial,
    load_certificate,
    load_public_key,
)

__all__ = [
    "CERTIFICATE_PATHS",
    "CertificateRegion",
    "CertificateTrust",
    "CombinedTrust",
    "PlatformCertificate",
    "PublicKeyTrust",
    "RawResponse",
    "Trust",
    "parse_certificate_download",
]

log = logging.getLogger("wxpay_async")

CertificateRegion = Literal["mainland", "global", "hk"]
#: Where each region serves its platform certificates, and on which host.
CERTIFICATE_PATHS: dict[CertificateRegion, tuple[str, str]] = {
    "mainland": ("mainland", "/v3/certificates"),
    "global": ("global_", "/v3/global/certificates"),
    "hk": ("mainland", "/hk/v3/certificates"),
}


@attrs.frozen(kw_only=True)
class RawResponse:
    """An HTTP answer exactly as received (headers and body bytes)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen(kw_only=True)
class PlatformCertificate:
    """A decrypted, checked WeChat Pay platform certificate."""

    serial_no: str
    effective_time: dt.datetime
    expire_time: dt.datetime
    certificate: x509.Certificate = attrs.field(repr=False)

    @property
    def public_key(self) -> RSAPublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, RSAPublicKey):  # pragma: no cover - WeChat issues RSA certificates
            raise ValidationError("certificate", "is not an RSA certificate")
        return key

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def valid_at(self, when: dt.datetime) -> bool:
        return self.effective_time <= when < self.expire_time

    @classmethod
    def from_pem(cls, pem: str | bytes | x509.Certificate) -> PlatformCertificate:
        cert = load_certificate(pem)
        return cls(
            serial_no=certificate_serial(cert),
            effective_time=cert.not_valid_before_utc,
            expire_time=cert.not_valid_after_utc,
            certificate=cert,
        )


class Trust(Protocol):
    """What the client, the verifier and field encryption need from a trust object."""

    async def verification_key(self, serial: str) -> RSAPublicKey:
        """The key for ``Wechatpay-Serial``; raises :class:`UnknownSerialError`."""
        ...

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        """``(serial, key)`` for sensitive-field encryption."""
        ...

    def knows(self, serial: str) -> bool:
        """Whether ``serial`` is known without any I/O."""
        ...

    def bind(self, downloader: CertificateDownloader, apiv3_key: bytes) -> None:
        """Give the trust a way to download certificates (called by ``WxPayClient``)."""
        ...


CertificateDownloader = Callable[[str, str], Awaitable[RawResponse]]
"""``await downloader(host_name, path)`` → the raw, *unverified* certificate-list answer."""


class _TrustOps:
    def __or__(self, other: Trust) -> CombinedTrust:
        return CombinedTrust(self, other)  # type: ignore[arg-type]


class PublicKeyTrust(_TrustOps):
    """The WeChat Pay public key mode: ``Wechatpay-Serial`` is the ``PUB_KEY_ID_…``."""

    def __init__(self, key_id: str, public_key: str | bytes | RSAPublicKey) -> None:
        if not isinstance(key_id, str) or not key_id.startswith("PUB_KEY_ID_"):
            raise ValidationError("key_id", "must start with PUB_KEY_ID_")
        self.key_id = key_id
        self.public_key = load_public_key(public_key)

    async def verification_key(self, serial: str) -> RSAPublicKey:
        if serial != self.key_id:
            raise UnknownSerialError(f"Wechatpay-Serial {serial!r} is not {self.key_id}")
        return self.public_key

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        return self.key_id, self.public_key

    def knows(self, serial: str) -> bool:
        return serial == self.key_id

    def bind(self, downloader: CertificateDownloader, apiv3_key: bytes) -> None:
        """Nothing to download in public-key mode."""

    def __repr__(self) -> str:
        return f"PublicKeyTrust(key_id={self.key_id!r})"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_certificate_download(
    response: RawResponse,
    apiv3_key: bytes,
    *,
    now: dt.datetime | None = None,
    extra_keys: Callable[[str], RSAPublicKey | None] = lambda _serial: None,
) -> list[PlatformCertificate]:
    """Decrypt and check a ``/v3/certificates``-style answer, then verify its signature.

    Each entry must decrypt under the APIv3 key, carry the serial it claims, and be within its
    validity window (expired entries are dropped). The response signature must verify under a
    certificate of this same list, or a key ``extra_keys`` knows (public-key mode).
    """
    try:
        document = json.loads(response.body)
        entries = document["data"]
        if not isinstance(entries, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SignatureVerificationError("certificate list is not the documented JSON") from None
    when = now or _utcnow()
    certs: list[PlatformCertificate] = []
    for entry in entries:
        enc = entry.get("encrypt_certificate") or {}
        if enc.get("algorithm") != AEAD_ALGORITHM:
            raise DecryptionError(f"unsupported certificate algorithm {enc.get('algorithm')!r}")
        pem = aead_decrypt(
            apiv3_key, enc.get("nonce", ""), enc.get("associated_data"), enc.get("ciphertext", "")
        )
        cert = PlatformCertificate.from_pem(pem)
        claimed = str(entry.get("serial_no", "")).upper()
        if cert.serial_no != claimed:
            raise SignatureVerificationError(
                f"certificate serial {cert.serial_no} does not match serial_no {claimed}"
            )
        if not cert.valid_at(when):
            log.info("dropping platform certificate %s outside its validity", cert.serial_no)
            continue
        certs.append(cert)
    signed = SignedHeaders.from_headers(response.headers)
    signed.check_basic()
    by_serial = {c.serial_no: c.public_key for c in certs}
    key = by_serial.get(signed.serial) or extra_keys(signed.serial)
    if key is None:
        raise UnknownSerialError(
            f"certificate list signed by {signed.serial}, which is not in the list",
            request_id=signed.request_id,
        )
    if not signed.verifies(key, response.body):
        raise SignatureVerificationError(
            "certificate list signature does not verify", request_id=signed.request_id
        )
    return certs


class CertificateTrust(_TrustOps):
    """Platform-certificate mode: downloads, decrypts and refreshes the certificates.

    ``certificates`` may preload PEMs (e.g. for a notification-only process). Once bound to a
    client, the list is downloaded on first use, refreshed every ``refresh_interval`` seconds,
    and once more when a response names a serial we do not hold (at most every
    ``min_refresh_gap`` seconds, so forged serials cannot force a download storm).
    """

    def __init__(
        self,
        *,
        region: CertificateRegion = "mainland",
        certificates: Iterable[str | bytes | x509.Certificate] = (),
        refresh_interval: float = 3600.0,
        min_refresh_gap: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if region not in CERTIFICATE_PATHS:
            raise ValidationError("region", f"must be one of {sorted(CERTIFICATE_PATHS)}")
        self.region: CertificateRegion = region
        self.refresh_interval = refresh_interval
        self.min_refresh_gap = min_refresh_gap
        self._clock = clock
        self._certs: dict[str, PlatformCertificate] = {}
        for pem in certificates:
            cert = PlatformCertificate.from_pem(pem)
            self._certs[cert.serial_no] = cert
        self._downloader: CertificateDownloader | None = None
        self._apiv3_key: bytes | None = None
        self._lock = asyncio.Lock()
        self._last_refresh: float | None = None
        self.refresh_count = 0

    def bind(self, downloader: CertificateDownloader, apiv3_key: bytes) -> None:
        self._downloader = downloader
        self._apiv3_key = apiv3_key

    @property
    def certificates(self) -> list[PlatformCertificate]:
        """The certificates currently held, newest expiry first."""
        return sorted(self._certs.values(), key=lambda c: c.expire_time, reverse=True)

    def knows(self, serial: str) -> bool:
        return serial in self._certs

    def _due(self) -> bool:
        if self._downloader is None:
            return False
        if self._last_refresh is None:
            return True
        return self._clock() - self._last_refresh >= self.refresh_interval

    async def refresh(self, *, force: bool = False) -> None:
        """Download the list now (concurrent callers share one download)."""
        if self._downloader is None or self._apiv3_key is None:
            raise UnknownSerialError("CertificateTrust is not bound to a client; cannot download")
        started = self._clock()
        async with self._lock:
            if not force and self._last_refresh is not None and self._last_refresh >= started:
                return  # someone refreshed while we waited
            host, path = CERTIFICATE_PATHS[self.region]
            raw = await self._downloader(host, path)
            if raw.status != 200:
                raise SignatureVerificationError(f"certificate download answered HTTP {raw.status}")
            certs = parse_certificate_download(
                raw,
                self._apiv3_key,
                now=dt.datetime.fromtimestamp(self._clock(), dt.UTC),
                extra_keys=lambda s: c.public_key if (c := self._certs.get(s)) else None,
            )
            for cert in certs:
                self._certs[cert.serial_no] = cert
            self._last_refresh = self._clock()
            self.refresh_count += 1
            log.info("platform certificates refreshed: %s", ", ".join(c.serial_no for c in certs))

    async def _refresh_if_due(self) -> None:
        if self._due():
            try:
                await self.refresh()
            except Exception:
                if not self._certs:
                    raise
                log.warning("platform certificate refresh failed; keeping held certificates")
                # Try again after the short gap, not after a whole refresh interval.
                self._last_refresh = self._clock() - self.refresh_interval + self.min_refresh_gap

    async def verification_key(self, serial: str) -> RSAPublicKey:
        await self._refresh_if_due()
        cert = self._certs.get(serial)
        if cert is None and self._downloader is not None:
            gap_ok = (
                self._last_refresh is None
                or self._clock() - self._last_refresh >= self.min_refresh_gap
            )
            if gap_ok:
                await self.refresh(force=True)
                cert = self._certs.get(serial)
        if cert is None:
            raise UnknownSerialError(f"no platform certificate with serial {serial!r}")
        return cert.public_key

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        await self._refresh_if_due()
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        for cert in self.certificates:
            if cert.valid_at(now):
                return cert.serial_no, cert.public_key
        raise UnknownSerialError("no valid platform certificate to encrypt with")

    def __repr__(self) -> str:
        return f"CertificateTrust(region={self.region!r}, serials={sorted(self._certs)})"


class CombinedTrust(_TrustOps):
    """Several trusts at once (public key and certificates during a migration).

    Verification uses whichever member knows the serial; encryption uses the first member.
    """

    def __init__(self, *members: Trust) -> None:
        flat: list[Trust] = []
        for member in members:
            flat.extend(member.members if isinstance(member, CombinedTrust) else [member])
        if not flat:
            raise ValidationError("trust", "needs at least one member")
        self.members: tuple[Trust, ...] = tuple(flat)

    async def verification_key(self, serial: str) -> RSAPublicKey:
        for member in self.members:
            if member.knows(serial):
                return await member.verification_key(serial)
        # Let members that can download try (certificate rotation).
        last: Exception | None = None
        for member in self.members:
            if isinstance(member, CertificateTrust):
                try:
                    return await member.verification_key(serial)
                except UnknownSerialError as exc:
                    last = exc
        raise last or UnknownSerialError(f"no trusted key for serial {serial!r}")

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        return await self.members[0].encryption_key()

    def knows(self, serial: str) -> bool:
        return any(member.knows(serial) for member in self.members)

    def bind(self, downloader: CertificateDownloader, apiv3_key: bytes) -> None:
        for member in self.members:
            member.bind(downloader, apiv3_key)

    def __repr__(self) -> str:
        return f"CombinedTrust{self.members!r}"
