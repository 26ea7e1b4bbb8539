"""Whom we trust: the WeChat Pay public key, platform certificates, or both during a migration.

A trust object answers two questions for the rest of the library:

* which public key verifies a response or notification signed under ``Wechatpay-Serial``;
* which key (and serial, sent as ``Wechatpay-Serial``) encrypts sensitive request fields.

Platform certificates are authenticated by decryption: AES-GCM under the APIv3 key, which only
WeChat Pay and the merchant hold. The certificate list's own response signature is therefore
checked against a certificate from that same download (after a rotation, no client holds the
new signing certificate yet), or a key already trusted (a held certificate; in a migration, the
WeChat Pay public key, with which WeChat then signs the list too).

Certificate serials are compared as numbers (``0A1B`` = ``a1b``), and a certificate is used only
inside its validity: the tighter of its own dates and those the list gives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._converter import parse_rfc3339
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
from .crypto.keys import parse_serial

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
    """A decrypted, checked WeChat Pay platform certificate.

    ``serial_no`` is spelled as the certificate list spells it (it is sent back that way in
    ``Wechatpay-Serial``); compare serials through :attr:`serial_number`. ``effective_time``
    and ``expire_time`` are the tighter of the certificate's own dates and the list's.
    """

    serial_no: str
    effective_time: dt.datetime
    expire_time: dt.datetime
    certificate: x509.Certificate = attrs.field(repr=False)

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number

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
        """Give the trust a way to download certificates (called by ``WxPayClient``).

        Raises :class:`ValidationError` (``trust``) if the trust cannot serve this client too.
        """
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


#: How far outside its validity a certificate still *verifies* (it never encrypts there): an
#: answer may be up to 300 s old or early by our clock, and WeChat's servers do not all switch
#: to a new certificate at the same instant.
_VERIFY_GRACE = dt.timedelta(seconds=300)


def _verifies_at(cert: PlatformCertificate, when: dt.datetime) -> bool:
    return cert.effective_time - _VERIFY_GRACE <= when < cert.expire_time + _VERIFY_GRACE


def parse_certificate_download(
    response: RawResponse,
    apiv3_key: bytes,
    *,
    now: dt.datetime | None = None,
    extra_keys: Callable[[str], RSAPublicKey | None] = lambda _serial: None,
) -> list[PlatformCertificate]:
    """Decrypt and check a ``/v3/certificates``-style answer, then verify its signature.

    Each entry must decrypt under the APIv3 key and carry the serial it claims; entries outside
    their validity (the tighter of the certificate's and the list's dates) are dropped. The
    response signature must verify under a valid certificate of this same list, or a key
    ``extra_keys`` knows (public-key mode).
    """
    valid = _valid_only(_read_certificate_list(response, apiv3_key), now or _utcnow())
    _verify_list_signature(response, valid, extra_keys)
    return valid


def _read_certificate_list(response: RawResponse, apiv3_key: bytes) -> list[PlatformCertificate]:
    """Every entry of the list, decrypted and checked, whatever its validity."""
    try:
        document = json.loads(response.body)
        entries = document["data"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):  # read before its signature
        raise SignatureVerificationError("certificate list is not the documented JSON") from None
    return [_listed_certificate(entry, apiv3_key) for entry in entries]


def _listed_certificate(entry: dict[str, Any], apiv3_key: bytes) -> PlatformCertificate:
    enc = entry.get("encrypt_certificate")
    if not isinstance(enc, dict):
        enc = {}
    if enc.get("algorithm") != AEAD_ALGORITHM:
        raise DecryptionError(f"unsupported certificate algorithm {enc.get('algorithm')!r}")
    pem = aead_decrypt(
        apiv3_key, enc.get("nonce", ""), enc.get("associated_data"), enc.get("ciphertext", "")
    )
    cert = load_certificate(pem)
    claimed = entry.get("serial_no")
    if not isinstance(claimed, str) or parse_serial(claimed) != cert.serial_number:
        raise SignatureVerificationError(
            f"certificate serial {certificate_serial(cert)} does not match serial_no {claimed!r}"
        )
    effective = _listed_time(entry, "effective_time")
    expire = _listed_time(entry, "expire_time")
    return PlatformCertificate(
        serial_no=claimed,
        effective_time=max(cert.not_valid_before_utc, effective or cert.not_valid_before_utc),
        expire_time=min(cert.not_valid_after_utc, expire or cert.not_valid_after_utc),
        certificate=cert,
    )


def _listed_time(entry: dict[str, Any], name: str) -> dt.datetime | None:
    value = entry.get(name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValidationError:
        raise SignatureVerificationError(
            f"certificate list {name} is not an RFC 3339 date-time"
        ) from None


def _valid_only(certs: list[PlatformCertificate], when: dt.datetime) -> list[PlatformCertificate]:
    valid = [cert for cert in certs if cert.valid_at(when)]
    for cert in certs:
        if not cert.valid_at(when):
            log.info("dropping platform certificate %s outside its validity", cert.serial_no)
    return valid


def _verify_list_signature(
    response: RawResponse,
    listed: list[PlatformCertificate],
    extra_keys: Callable[[str], RSAPublicKey | None],
) -> None:
    signed = SignedHeaders.from_headers(response.headers)
    signed.check_basic()
    number = parse_serial(signed.serial)
    signer = next((c for c in listed if c.serial_number == number), None)
    key = signer.public_key if signer is not None else extra_keys(signed.serial)
    if key is None:
        raise UnknownSerialError(
            f"certificate list signed by {signed.serial}, which is neither a valid certificate"
            " of the list nor a trusted key",
            request_id=signed.request_id,
        )
    if not signed.verifies(key, response.body):
        raise SignatureVerificationError(
            "certificate list signature does not verify", request_id=signed.request_id
        )


class CertificateTrust(_TrustOps):
    """Platform-certificate mode: downloads, decrypts and refreshes the certificates.

    ``certificates`` may preload PEMs (e.g. for a notification-only process). Once bound to a
    client, the list is downloaded on first use, refreshed every ``refresh_interval`` seconds,
    and once more when a response names a serial we do not hold (at most every
    ``min_refresh_gap`` seconds, so forged serials cannot force a download storm). Concurrent
    callers share one download, and share its failure too; a failed download is tried again
    after ``min_refresh_gap`` while held certificates still serve.

    A download replaces the held set: certificates it lists, plus older ones only while still
    valid (answers signed just before a rotation keep verifying). WeChat moves a retiring
    certificate's ``expire_time`` earlier before it leaves the list, and that date is honoured.
    A certificate outside its validity does not encrypt, nor verify (beyond a 300 s grace for
    clocks and servers that switch certificates a little apart).

    One trust serves one client at a time (see :meth:`bind`).
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
        self._certs: dict[int, PlatformCertificate] = {}
        for pem in certificates:
            cert = PlatformCertificate.from_pem(pem)
            self._certs[cert.serial_number] = cert
        self._downloader: CertificateDownloader | None = None
        self._apiv3_key: bytes | None = None
        #: Other members of the CombinedTrust we were bound through (their keys may sign the list).
        self._siblings: tuple[Trust, ...] = ()
        self._last_success: float | None = None
        self._last_attempt: float | None = None
        self._downloads_started = 0
        self._in_flight: tuple[int, asyncio.Task[None]] | None = None
        self.refresh_count = 0

    # -- binding -------------------------------------------------------------------------------

    def bind(self, downloader: CertificateDownloader, apiv3_key: bytes) -> None:
        """Download through ``downloader`` from now on (``WxPayClient`` calls this).

        Raises :class:`ValidationError` (``trust``) while another client that holds this trust
        is open: the first client would silently download through the second, and fail once
        that one is closed. Binding again after the other client is closed is fine.
        """
        self._check_bindable(downloader)
        self._attach(downloader, apiv3_key, ())

    def _check_bindable(self, downloader: CertificateDownloader) -> None:
        bound = self._downloader
        if bound is not None and bound != downloader and not _client_closed(bound):
            raise ValidationError(
                "trust",
                "a CertificateTrust serves one WxPayClient at a time and is bound to another "
                "open client; give each client its own CertificateTrust, or close the other first",
            )

    def _attach(
        self, downloader: CertificateDownloader, apiv3_key: bytes, siblings: tuple[Trust, ...]
    ) -> None:
        self._downloader = downloader
        self._apiv3_key = apiv3_key
        self._siblings = siblings

    # -- what is held --------------------------------------------------------------------------

    @property
    def certificates(self) -> list[PlatformCertificate]:
        """The certificates currently held, newest expiry first (see ``valid_at``)."""
        return sorted(self._certs.values(), key=lambda c: c.expire_time, reverse=True)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def _usable(self, serial: str) -> PlatformCertificate | None:
        """The held certificate named by ``serial``, if it may verify now."""
        number = parse_serial(serial)
        cert = self._certs.get(number) if number is not None else None
        return cert if cert is not None and _verifies_at(cert, self._now()) else None

    def _has_usable(self) -> bool:
        now = self._now()
        return any(_verifies_at(cert, now) for cert in self._certs.values())

    def knows(self, serial: str) -> bool:
        return self._usable(serial) is not None

    def _list_signer(self, serial: str) -> RSAPublicKey | None:
        """A key already trusted for ``serial``, besides the list's own certificates."""
        cert = self._usable(serial)
        if cert is not None:
            return cert.public_key
        for sibling in self._siblings:
            if isinstance(sibling, PublicKeyTrust) and sibling.knows(serial):
                return sibling.public_key
        return None

    # -- downloading ---------------------------------------------------------------------------

    def _gap_passed(self) -> bool:
        last = self._last_attempt
        return last is None or self._clock() - last >= self.min_refresh_gap

    def _due(self) -> bool:
        """Never downloaded, or ``refresh_interval`` has passed since the last good download.

        After a failed attempt the next waits ``min_refresh_gap``, unless nothing usable is held
        (then every call needs the list).
        """
        if self._downloader is None:
            return False
        last = self._last_success
        if last is not None and self._clock() - last < self.refresh_interval:
            return False
        return self._gap_passed() or not self._has_usable()

    def _may_download_for_unknown_serial(self) -> bool:
        """Perhaps a rotation: share a download under way, or start one at most every
        ``min_refresh_gap`` (forged serials cannot force a storm)."""
        if self._downloader is None:
            return False
        in_flight = self._in_flight is not None and not self._in_flight[1].done()
        return in_flight or self._gap_passed()

    async def refresh(self, *, force: bool = False) -> None:
        """Download the list now; concurrent callers share one download (and its failure).

        A download already under way is shared. With ``force=True`` only a download that starts
        after this call counts: one under way is waited out, and callers arriving meanwhile
        share the next one. Errors: those of the download (``APIError``,
        ``SignatureVerificationError``, ``DecryptionError``, transport errors), or
        ``UnknownSerialError`` if no client is bound.
        """
        if self._downloader is None:
            raise UnknownSerialError("CertificateTrust is not bound to a client; cannot download")
        await self._shared_download(fresh=force)

    async def _shared_download(self, *, fresh: bool) -> None:
        newer_than = self._downloads_started if fresh else 0
        while True:
            current = self._in_flight
            if current is None or current[1].done():
                current = self._start_download()
            number, task = current
            if number > newer_than:
                # Shielded: a caller that gives up must not cancel the download others await.
                await asyncio.shield(task)
                return
            await asyncio.wait([task])

    def _start_download(self) -> tuple[int, asyncio.Task[None]]:
        self._downloads_started += 1
        task = asyncio.create_task(self._download(), name="wxpay_async certificate download")
        task.add_done_callback(self._download_done)
        self._in_flight = (self._downloads_started, task)
        return self._in_flight

    def _download_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            # Retrieved, so a failure every waiter gave up on is not reported again by asyncio
            # ("exception was never retrieved"): _download has logged it.
            task.exception()
        if self._in_flight is not None and self._in_flight[1] is task:
            self._in_flight = None

    async def _download(self) -> None:
        downloader, apiv3_key = self._downloader, self._apiv3_key
        if downloader is None or apiv3_key is None:  # pragma: no cover - refresh() checked
            raise UnknownSerialError("CertificateTrust is not bound to a client; cannot download")
        host, path = CERTIFICATE_PATHS[self.region]
        try:
            raw = await downloader(host, path)
            if raw.status != 200:
                raise SignatureVerificationError(f"certificate download answered HTTP {raw.status}")
            listed = _read_certificate_list(raw, apiv3_key)
            now = self._now()
            current = [cert for cert in listed if _verifies_at(cert, now)]
            _verify_list_signature(raw, current, self._list_signer)
        except Exception as exc:
            self._last_attempt = self._clock()
            log.warning(
                "platform certificate refresh failed: %r%s",
                exc,  # %r: an unverified error answer's message stays on one line
                "; keeping the held certificates" if self._has_usable() else "",
            )
            raise
        # Replace the held set: what the list says wins (a listed certificate it declares
        # expired goes); an older one it no longer lists stays only while still valid.
        listed_numbers = {cert.serial_number for cert in listed}
        held = {
            number: cert
            for number, cert in self._certs.items()
            if number not in listed_numbers and _verifies_at(cert, now)
        }
        held.update((cert.serial_number, cert) for cert in current)
        self._certs = held
        self._last_success = self._last_attempt = self._clock()
        self.refresh_count += 1
        log.info("platform certificates refreshed: %s", ", ".join(c.serial_no for c in current))

    async def _refresh_if_due(self) -> None:
        if not self._due():
            return
        try:
            await self._shared_download(fresh=False)
        except Exception:
            if not self._has_usable():
                raise
            # Already logged by the download; the held certificates still serve.

    # -- the Trust protocol --------------------------------------------------------------------

    async def verification_key(self, serial: str) -> RSAPublicKey:
        await self._refresh_if_due()
        cert = self._usable(serial)
        if cert is None and self._may_download_for_unknown_serial():
            await self._shared_download(fresh=False)
            cert = self._usable(serial)
        if cert is None:
            raise UnknownSerialError(f"no valid platform certificate with serial {serial!r}")
        return cert.public_key

    async def encryption_key(self) -> tuple[str, RSAPublicKey]:
        await self._refresh_if_due()
        now = self._now()
        for cert in self.certificates:
            if cert.valid_at(now):
                return cert.serial_no, cert.public_key
        raise UnknownSerialError("no valid platform certificate to encrypt with")

    def __repr__(self) -> str:
        serials = sorted(cert.serial_no for cert in self._certs.values())
        return f"CertificateTrust(region={self.region!r}, serials={serials})"


def _client_closed(downloader: CertificateDownloader) -> bool:
    """Whether the client that bound ``downloader`` (its ``_download_certificates``) is closed.

    Any other downloader counts as open: a second binding is refused, never silently taken over.
    """
    client = getattr(downloader, "__self__", None)
    return getattr(client, "closed", False) is True


class CombinedTrust(_TrustOps):
    """Several trusts at once (public key and certificates during a migration).

    Verification uses whichever member knows the serial; encryption uses the first member. A
    certificate member may verify its list download with a public-key member's key (during a
    migration WeChat signs the list with the WeChat Pay public key).
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
        """Bind every member, or none if a certificate member serves another open client."""
        for member in self.members:
            if isinstance(member, CertificateTrust):
                member._check_bindable(downloader)
        for member in self.members:
            if isinstance(member, CertificateTrust):
                siblings = tuple(other for other in self.members if other is not member)
                member._attach(downloader, apiv3_key, siblings)
            else:
                member.bind(downloader, apiv3_key)

    def __repr__(self) -> str:
        return f"CombinedTrust{self.members!r}"
