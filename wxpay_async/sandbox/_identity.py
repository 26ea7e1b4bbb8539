"""Who the sandbox is: the merchant it serves and the WeChat Pay keys it signs and decrypts with.

RSA-2048 key generation costs ~40 ms, so generated keys are shared per process by role (test
suites start hundreds of sandboxes); certificates and serials are always fresh.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import string
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.x509.oid import NameOID

from ..crypto import certificate_serial, load_certificate, load_private_key

__all__ = [
    "SANDBOX_MCHID",
    "Identity",
    "PlatformCertificate",
    "cached_key",
    "private_pem",
    "public_pem",
]

SANDBOX_MCHID = "1900000109"
_KEYS: dict[str, RSAPrivateKey] = {}
_CERT_LIFETIME = dt.timedelta(days=5 * 365)  # platform certificates are valid five years
_ALNUM = string.ascii_letters + string.digits


def cached_key(role: str) -> RSAPrivateKey:
    """A process-wide RSA-2048 key for ``role`` (generated on first use)."""
    key = _KEYS.get(role)
    if key is None:
        key = _KEYS[role] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key


def private_pem(key: RSAPrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the sandbox's own throwaway keys)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: RSAPublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, the shape of WeChat's downloadable ``pub_key.pem``."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@attrs.frozen(kw_only=True)
class PlatformCertificate:
    """A platform certificate and the private key only WeChat (here: the sandbox) holds."""

    certificate: x509.Certificate = attrs.field(repr=False)
    private_key: RSAPrivateKey = attrs.field(repr=False)

    @property
    def serial_no(self) -> str:
        return certificate_serial(self.certificate)

    @property
    def effective_time(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def expire_time(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def issue(cls, key: RSAPrivateKey, now: dt.datetime | None = None) -> PlatformCertificate:
        """A self-signed certificate whose serial prints as upper-case hex, like WeChat's."""
        start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wxpay_async sandbox"),
                x509.NameAttribute(NameOID.COMMON_NAME, "WeChat Pay sandbox platform certificate"),
            ]
        )
        # 160-bit serials start with a non-zero nibble so they print as 40 hex digits.
        serial = (1 << 156) | secrets.randbits(156)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + _CERT_LIFETIME)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate=cert, private_key=key)


def _random_serial() -> str:
    return secrets.token_hex(20).upper()


def _random_pubkey_id() -> str:
    return "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(26))


@attrs.define(kw_only=True, repr=False)
class Identity:
    """The sandbox merchant's credentials and the sandbox's WeChat Pay keys."""

    mchid: str
    merchant_serial: str
    merchant_key: RSAPrivateKey
    apiv3_key: str
    pubkey_id: str
    pubkey_key: RSAPrivateKey
    #: Oldest first; the last one signs in certificate mode.
    certificates: list[PlatformCertificate]

    @classmethod
    def generate(
        cls,
        *,
        mchid: str = SANDBOX_MCHID,
        merchant_private_key: str | bytes | RSAPrivateKey | None = None,
        fresh_keys: bool = False,
    ) -> Identity:
        """A new identity; keys come from the per-process cache unless ``fresh_keys``."""

        def key(role: str) -> RSAPrivateKey:
            if fresh_keys:
                return rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return cached_key(role)

        merchant = (
            load_private_key(merchant_private_key, field="merchant_private_key")
            if merchant_private_key is not None
            else key("merchant")
        )
        return cls(
            mchid=mchid,
            merchant_serial=_random_serial(),
            merchant_key=merchant,
            apiv3_key="".join(secrets.choice(_ALNUM) for _ in range(32)),
            pubkey_id=_random_pubkey_id(),
            pubkey_key=key("pubkey"),
            certificates=[PlatformCertificate.issue(key("platform-0"))],
        )

    @property
    def merchant_public_key(self) -> RSAPublicKey:
        return self.merchant_key.public_key()

    @property
    def current_certificate(self) -> PlatformCertificate:
        return self.certificates[-1]

    def rotate(self, *, fresh_key: bool = False) -> PlatformCertificate:
        """Issue a new platform certificate; the old ones stay listed until they expire."""
        role = f"platform-{len(self.certificates)}"
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if fresh_key
            else cached_key(role)
        )
        cert = PlatformCertificate.issue(key)
        self.certificates.append(cert)
        return cert

    def decryption_key(self, serial: str) -> RSAPrivateKey | None:
        """The private key behind ``Wechatpay-Serial`` (public-key ID or certificate serial)."""
        if serial == self.pubkey_id:
            return self.pubkey_key
        for cert in self.certificates:
            if cert.serial_no == serial.upper():
                return cert.private_key
        return None

    def __repr__(self) -> str:
        return f"Identity(mchid={self.mchid!r}, serial={self.merchant_serial!r}, <keys hidden>)"

    # -- persistence (``wxpay-async sandbox --identity DIR``) -------------------------------------

    #: What :meth:`save` writes at the top of its directory (``merchant.toml`` comes later).
    FILES = (
        "merchant_private_key.pem",
        "wechatpay_public_key.pem",
        "platform_certificate.pem",
        "merchant.toml",
        "sandbox-private",
    )

    @classmethod
    def occupied(cls, directory: Path) -> list[str]:
        """The files of :data:`FILES` already in ``directory``: a new identity overwrites none.

        A directory pointed at by mistake (a real merchant's configuration) would otherwise
        lose its private key to a throwaway one.
        """
        return [name for name in cls.FILES if (directory / name).exists()]

    def save(self, directory: Path) -> None:
        """Write everything a restarted sandbox needs to accept the same client.

        Refuses (``FileExistsError``) to write over any file of :data:`FILES`.
        """
        taken = self.occupied(directory)
        if taken:
            raise FileExistsError(
                f"{directory} already holds {', '.join(taken)}; a new sandbox identity needs "
                "a directory without them"
            )
        directory.mkdir(parents=True, exist_ok=True)
        private = directory / "sandbox-private"
        private.mkdir()
        _write_secret(directory / "merchant_private_key.pem", private_pem(self.merchant_key))
        _write_secret(private / "wechatpay_public_key_private.pem", private_pem(self.pubkey_key))
        (directory / "wechatpay_public_key.pem").write_bytes(
            public_pem(self.pubkey_key.public_key())
        )
        certs = []
        for i, cert in enumerate(self.certificates):
            _write_secret(private / f"platform_{i}_private.pem", private_pem(cert.private_key))
            (private / f"platform_{i}_certificate.pem").write_bytes(cert.pem)
            certs.append(i)
        (directory / "platform_certificate.pem").write_bytes(self.current_certificate.pem)
        record = {
            "mchid": self.mchid,
            "merchant_serial": self.merchant_serial,
            "apiv3_key": self.apiv3_key,
            "pubkey_id": self.pubkey_id,
            "certificates": certs,
        }
        _write_secret(private / "identity.json", json.dumps(record, indent=2).encode())

    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (directory / "sandbox-private" / "identity.json").is_file()

    @classmethod
    def load(cls, directory: Path) -> Identity:
        """Read an identity written by :meth:`save`."""
        private = directory / "sandbox-private"
        record = json.loads((private / "identity.json").read_text())
        certs = [
            PlatformCertificate(
                certificate=load_certificate(
                    (private / f"platform_{i}_certificate.pem").read_bytes()
                ),
                private_key=load_private_key((private / f"platform_{i}_private.pem").read_bytes()),
            )
            for i in record["certificates"]
        ]
        return cls(
            mchid=record["mchid"],
            merchant_serial=record["merchant_serial"],
            merchant_key=load_private_key((directory / "merchant_private_key.pem").read_bytes()),
            apiv3_key=record["apiv3_key"],
            pubkey_id=record["pubkey_id"],
            pubkey_key=load_private_key(
                (private / "wechatpay_public_key_private.pem").read_bytes()
            ),
            certificates=certs,
        )


def _write_secret(path: Path, data: bytes) -> None:
    # Private keys and the APIv3 key: owner-readable only, from the moment the file exists,
    # and never over an existing file (whose mode would be kept).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
