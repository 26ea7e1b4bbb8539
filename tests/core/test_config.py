"""MerchantCredentials, Hosts and RetryPolicy."""

from __future__ import annotations

import pickle
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wxpay_async import Hosts, MerchantCredentials, RetryPolicy, ValidationError

KEY32 = "0123456789abcdef0123456789abcdef"


def make(**overrides: object) -> MerchantCredentials:
    args: dict[str, object] = {
        "mchid": "1900000109",
        "serial_no": "abc123",
        "private_key": overrides.pop("private_key"),
        "apiv3_key": KEY32,
    }
    args.update(overrides)
    return MerchantCredentials(**args)  # type: ignore[arg-type]


def test_valid_credentials_hide_secrets(rsa_key_pem: bytes) -> None:
    creds = make(private_key=rsa_key_pem)
    assert creds.serial_no == "ABC123"
    assert creds.apiv3_key == KEY32.encode()
    text = repr(creds) + str(creds)
    assert KEY32 not in text
    assert "PRIVATE" not in text
    assert "1900000109" in text
    with pytest.raises(TypeError):
        pickle.dumps(creds)


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"mchid": ""}, "mchid", "letters and digits"),
        ({"mchid": "  "}, "mchid", "letters and digits"),
        ({"serial_no": ""}, "serial_no", "hexadecimal"),
        ({"apiv3_key": "short"}, "apiv3_key", "exactly 32 bytes"),
        ({"apiv3_key": KEY32 + "x"}, "apiv3_key", "exactly 32 bytes"),
        (
            {"private_key": b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"},
            "private_key",
            "PEM",
        ),
    ],
)
def test_invalid_credentials_name_the_field(
    rsa_key_pem: bytes, overrides: dict[str, object], field: str, rule: str
) -> None:
    overrides.setdefault("private_key", rsa_key_pem)
    with pytest.raises(ValidationError) as info:
        make(**overrides)
    assert info.value.field == field
    assert rule in info.value.rule
    assert field in str(info.value)
    assert KEY32 not in str(info.value)


def test_non_rsa_key_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValidationError, match="RSA"):
        make(private_key=pem)


def test_from_files(tmp_path: Path, rsa_key_pem: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "apiclient_key.pem"
    key_file.write_bytes(rsa_key_pem)
    monkeypatch.setenv("TEST_APIV3", KEY32)
    creds = MerchantCredentials.from_files(
        mchid="1", serial_no="AB", private_key_path=key_file, apiv3_key_env="TEST_APIV3"
    )
    assert creds.apiv3_key == KEY32.encode()
    with pytest.raises(ValidationError, match="private_key_path"):
        MerchantCredentials.from_files(
            mchid="1", serial_no="AB", private_key_path=tmp_path / "missing.pem", apiv3_key=KEY32
        )
    with pytest.raises(ValidationError, match="apiv3_key_env"):
        MerchantCredentials.from_files(
            mchid="1", serial_no="AB", private_key_path=key_file, apiv3_key_env="UNSET_VAR_X"
        )
    with pytest.raises(ValidationError, match="apiv3_key"):
        MerchantCredentials.from_files(mchid="1", serial_no="AB", private_key_path=key_file)


def test_hosts() -> None:
    hosts = Hosts()
    assert hosts.mainland == "https://api.mch.weixin.qq.com"
    assert hosts.mainland_backup == "https://api2.mch.weixin.qq.com"
    assert hosts.global_ == "https://apihk.mch.weixin.qq.com"
    assert hosts.weixin == "https://api.weixin.qq.com"
    assert not hosts.failover
    single = Hosts.single("http://127.0.0.1:8480/")
    assert {single.base(n) for n in ("mainland", "mainland_backup", "global_", "weixin")} == {
        "http://127.0.0.1:8480"
    }


def test_retry_policy_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(wait_initial=0.1, wait_max=1.0, wait_jitter=0.05)
    waits = [policy.wait_before(n) for n in range(1, 8)]
    assert 0.1 <= waits[0] <= 0.15
    assert 0.2 <= waits[1] <= 0.25
    assert waits[-1] == 1.0
    # Retry-After is a minimum: the jitter spreads the callers it refused together.
    after = [policy.wait_before(1, retry_after=0.5) for _ in range(200)]
    assert all(0.5 <= wait <= 0.55 for wait in after)
    assert len(set(after)) > 1
    assert RetryPolicy(wait_jitter=0).wait_before(1, retry_after=0.5) == 0.5
    assert policy.wait_before(1, retry_after=50) == 1.0
    assert RetryPolicy(sleep=False).wait_before(3) == 0.0
    assert RetryPolicy.none().attempts == 1
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_credentials_evolve_rebuilds_the_authorization_header(
    credentials: MerchantCredentials,
) -> None:
    other = attrs.evolve(credentials, mchid="1900000110")
    header = other.authorization("GET", "/v3/x", b"", 1700000000)
    assert 'mchid="1900000110"' in header
    assert f'serial_no="{credentials.serial_no}"' in header


def test_failover_needs_a_backup_other_than_the_primary() -> None:
    # Hosts.single() points every host at one URL: failing over there could never help.
    with pytest.raises(ValidationError) as caught:
        Hosts(mainland="https://a.example", mainland_backup="https://a.example", failover=True)
    assert caught.value.field == "failover"
    with pytest.raises(ValidationError):
        attrs.evolve(Hosts.single("http://127.0.0.1:8480"), failover=True)
    assert Hosts(failover=True).mainland_backup == "https://api2.mch.weixin.qq.com"
