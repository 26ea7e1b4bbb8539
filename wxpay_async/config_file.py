"""``merchant.toml``: who we are, whom we trust and where WeChat Pay is, in one file.

::

    mchid = "1900000109"
    serial_no = "5157F09EFDC096DE15EBE81A47057A72********"
    private_key_path = "merchant_private_key.pem"   # relative to this file
    apiv3_key_env = "WXPAY_APIV3_KEY"               # or apiv3_key = "..." inline

    [trust]
    mode = "public_key"                             # or "certificate" (optional region),
    public_key_id = "PUB_KEY_ID_0114232134912410000000000000"   # or "combined" (both:
    public_key_path = "wechatpay_public_key.pem"    # a migration; encrypts with the key)

    [hosts]                                          # omit for the real hosts
    single = "http://127.0.0.1:8480"

Every problem is a :class:`ValidationError` naming the key (``trust.public_key_id``); unknown
keys are refused so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ._client import WxPayClient
from ._config import Hosts, MerchantCredentials, read_file
from ._errors import ValidationError
from .trust import CERTIFICATE_PATHS, CertificateTrust, PublicKeyTrust, Trust

log = logging.getLogger("wxpay_async")

__all__ = ["MerchantConfig", "client_from_config", "load_merchant_config"]

_TOP_KEYS = frozenset(
    {"mchid", "serial_no", "private_key_path", "apiv3_key", "apiv3_key_env", "trust", "hosts"}
)
_HOST_KEYS = ("mainland", "mainland_backup", "global_", "weixin")


@attrs.frozen(kw_only=True)
class MerchantConfig:
    """What ``merchant.toml`` describes, ready to build a :class:`WxPayClient`."""

    credentials: MerchantCredentials
    trust: Trust
    hosts: Hosts
    path: Path | None = None
    #: Builds another trust like ``trust``: a CertificateTrust serves one client only.
    trust_factory: Callable[[], Trust] | None = attrs.field(default=None, repr=False, eq=False)
    _handed_out: list[bool] = attrs.field(factory=list, init=False, repr=False, eq=False)

    def client(self, **overrides: Any) -> WxPayClient:
        """A client for this merchant; keyword arguments override any WxPayClient option.

        The first client gets :attr:`trust`; later ones get a fresh trust of the same kind.
        """
        trust = self.trust
        if self.trust_factory is not None and self._handed_out:
            trust = self.trust_factory()
        self._handed_out.append(True)
        settings: dict[str, Any] = {"trust": trust, "hosts": self.hosts, **overrides}
        return WxPayClient(self.credentials, **settings)


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise ValidationError(where + key, "is required in merchant.toml")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(where + key, "must be a non-empty string")
    return value.strip()


def _refuse_unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValidationError(where + unknown[0], "is not a merchant.toml key")


def _table(document: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(key, "must be a [table]")
    return value


#: What the library's arguments are called in merchant.toml, for errors that name the key.
_TOML_NAMES = {
    "key_id": "public_key_id",
    "public_key": "public_key_path",
    "private_key": "private_key_path",
}
_TRUST_KEYS = {
    "public_key": frozenset({"mode", "public_key_id", "public_key_path"}),
    "certificate": frozenset({"mode", "region"}),
    "combined": frozenset({"mode", "public_key_id", "public_key_path", "region"}),
}


def _renamed(exc: ValidationError, where: str, **names: str) -> ValidationError:
    """``exc`` naming the merchant.toml key (``where`` + its name there) instead of the argument."""
    head, dot, rest = exc.field.partition(".")
    head = names.get(head, _TOML_NAMES.get(head, head))
    return ValidationError(where + head + dot + rest, exc.rule)


def _public_key_trust(table: Mapping[str, Any], base: Path) -> Callable[[], PublicKeyTrust]:
    key_id = _text(table, "public_key_id", "trust.") or ""
    pem = read_file(
        base / (_text(table, "public_key_path", "trust.") or ""), "trust.public_key_path"
    )
    try:
        PublicKeyTrust(key_id, pem)
    except ValidationError as exc:
        raise _renamed(exc, "trust.") from None
    return lambda: PublicKeyTrust(key_id, pem)


def _certificate_trust(table: Mapping[str, Any]) -> Callable[[], CertificateTrust]:
    region = _text(table, "region", "trust.", required=False) or "mainland"
    if region not in CERTIFICATE_PATHS:
        raise ValidationError("trust.region", f"must be one of {', '.join(CERTIFICATE_PATHS)}")
    return lambda: CertificateTrust(region=region)


def _trust(table: Mapping[str, Any] | None, base: Path) -> Callable[[], Trust]:
    if table is None:
        raise ValidationError("trust", "the [trust] table is required (mode = ...)")
    mode = _text(table, "mode", "trust.")
    if mode not in _TRUST_KEYS:
        raise ValidationError("trust.mode", 'must be "public_key", "certificate" or "combined"')
    _refuse_unknown(table, _TRUST_KEYS[mode], "trust.")
    if mode == "public_key":
        return _public_key_trust(table, base)
    if mode == "certificate":
        return _certificate_trust(table)
    # A migration between the two: answers signed either way verify; fields are encrypted
    # with the public key (the trust listed first), where the migration is heading.
    by_key, by_certificate = _public_key_trust(table, base), _certificate_trust(table)
    return lambda: by_key() | by_certificate()


def _hosts(table: Mapping[str, Any] | None) -> Hosts:
    if table is None:
        return Hosts()
    _refuse_unknown(table, frozenset({"single", "failover", *_HOST_KEYS}), "hosts.")
    failover = table.get("failover", False)
    if not isinstance(failover, bool):
        raise ValidationError("hosts.failover", "must be true or false")
    single = _text(table, "single", "hosts.", required=False)
    if single is not None:
        if any(key in table for key in _HOST_KEYS):
            raise ValidationError("hosts.single", "cannot be combined with individual hosts")
        if failover:
            raise ValidationError(
                "hosts.failover", "cannot be combined with hosts.single (one URL for every host)"
            )
        try:
            return attrs.evolve(Hosts.single(single), failover=failover)
        except ValidationError as exc:
            raise ValidationError("hosts.single", exc.rule) from None
    chosen = {key: _text(table, key, "hosts.", required=False) for key in _HOST_KEYS}
    try:
        return Hosts(**{k: v for k, v in chosen.items() if v is not None}, failover=failover)
    except ValidationError as exc:
        raise exc.prefixed("hosts") from None


def _warn_if_readable_by_others(file: Path) -> None:
    """Log a warning when a file holding the APIv3 key inline is readable by group or others.

    A warning, not a refusal: file modes do not say it all everywhere (Windows, some mounts).
    """
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        log.warning(
            "%s holds apiv3_key inline and is readable by others (mode %o): chmod 600 it, "
            "or use apiv3_key_env",
            file,
            mode & 0o777,
        )


def load_merchant_config(path: str | os.PathLike[str]) -> MerchantConfig:
    """Read ``merchant.toml``; relative paths in it are relative to the file."""
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError("config", f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValidationError("config", f"{file} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError("config", f"{file} is not valid TOML: {exc}") from None
    _refuse_unknown(document, _TOP_KEYS, "")
    base = file.parent
    mchid = _text(document, "mchid", "") or ""
    serial_no = _text(document, "serial_no", "") or ""
    key_path = base / (_text(document, "private_key_path", "") or "")
    inline_key = _text(document, "apiv3_key", "", required=False)
    key_env = _text(document, "apiv3_key_env", "", required=False)
    if (inline_key is None) == (key_env is None):
        raise ValidationError("apiv3_key", "give exactly one of apiv3_key or apiv3_key_env")
    if inline_key is not None:
        _warn_if_readable_by_others(file)
    try:
        credentials = MerchantCredentials.from_files(
            mchid=mchid,
            serial_no=serial_no,
            private_key_path=key_path,
            apiv3_key=inline_key,
            apiv3_key_env=key_env,
        )
    except ValidationError as exc:
        # The APIv3 key's errors name where it came from: apiv3_key_env when it was read
        # from the environment.
        raise _renamed(exc, "", apiv3_key="apiv3_key_env" if key_env else "apiv3_key") from None
    trust_factory = _trust(_table(document, "trust"), base)
    return MerchantConfig(
        credentials=credentials,
        trust=trust_factory(),
        trust_factory=trust_factory,
        hosts=_hosts(_table(document, "hosts")),
        path=file,
    )


def client_from_config(path: str | os.PathLike[str], **overrides: Any) -> WxPayClient:
    """A :class:`WxPayClient` configured from ``merchant.toml``; keyword arguments win."""
    return load_merchant_config(path).client(**overrides)
