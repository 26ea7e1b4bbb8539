"""``wxpay-async sandbox`` in a subprocess, and ``merchant.toml`` loading."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.helpers import H5_STATE, HK_CREATE, document, hk_application, send_json
from wxpay_async import CertificateTrust, PublicKeyTrust, ValidationError
from wxpay_async.cli import main
from wxpay_async.config_file import client_from_config, load_merchant_config
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Identity, Sandbox
from wxpay_async.sandbox.cli import write_merchant_toml


def start_cli(identity: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wxpay_async.cli",
            "sandbox",
            "--port",
            "0",
            "--identity",
            str(identity),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the server is listening (or died)
    if "listening on" not in line:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"sandbox did not start: {line!r} {err[-2000:]}")
    return process, line


def stop_cli(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.fixture
def identity_dir(tmp_path: Path) -> Path:
    return tmp_path / "identity"


@pytest.mark.parametrize("mode", ["public_key", "certificate"])
async def test_cli_serves_a_client_configured_from_its_identity(
    identity_dir: Path, mode: str
) -> None:
    process, line = start_cli(identity_dir, "--key-mode", mode)
    try:
        toml = identity_dir / "merchant.toml"
        assert str(toml) in line
        for name in (
            "merchant_private_key.pem",
            "wechatpay_public_key.pem",
            "platform_certificate.pem",
        ):
            assert (identity_dir / name).is_file()
        assert oct((identity_dir / "merchant_private_key.pem").stat().st_mode & 0o777) == "0o600"
        async with client_from_config(toml) as client:
            raw = await client.send(H5_STATE, path_params={"sub_mchid": DEFAULT_SUB_MCHID})
            assert document(raw)["authorization_state"] == "UNAUTHORIZED"
            raw = await send_json(client, HK_CREATE, hk_application(), idempotency_key="cli1")
            assert document(raw)["verification_status"] == "Under Review"
    finally:
        assert await asyncio.to_thread(stop_cli, process) == 0


async def test_restarted_cli_reuses_the_identity(identity_dir: Path) -> None:
    process, _ = start_cli(identity_dir)
    first = load_merchant_config(identity_dir / "merchant.toml")
    key_before = (identity_dir / "merchant_private_key.pem").read_bytes()
    assert await asyncio.to_thread(stop_cli, process) == 0

    process, line = start_cli(identity_dir)
    try:
        assert "reused identity" in line
        assert (identity_dir / "merchant_private_key.pem").read_bytes() == key_before
        # Rewritten (the URL may change), owner-readable: it holds the APIv3 key inline.
        assert (identity_dir / "merchant.toml").stat().st_mode & 0o777 == 0o600
        second = load_merchant_config(identity_dir / "merchant.toml")
        assert second.credentials.serial_no == first.credentials.serial_no
        async with second.client() as client:
            raw = await client.send(H5_STATE, path_params={"sub_mchid": DEFAULT_SUB_MCHID})
            assert raw.status == 200
    finally:
        assert await asyncio.to_thread(stop_cli, process) == 0


def test_cli_refuses_a_file_as_identity_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["sandbox", "--identity", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_cli_never_overwrites_keys_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --identity pointed at a real configuration by mistake: nothing is replaced."""
    key = tmp_path / "merchant_private_key.pem"
    key.write_text("the merchant's real key")
    assert main(["sandbox", "--identity", str(tmp_path)]) == 2
    assert "already holds merchant_private_key.pem" in capsys.readouterr().err
    assert key.read_text() == "the merchant's real key"
    assert not (tmp_path / "sandbox-private").exists()
    with pytest.raises(FileExistsError):
        Identity.generate().save(tmp_path)
    assert key.read_text() == "the merchant's real key"


def test_cli_leaves_a_merchant_toml_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Identity.generate().save(tmp_path)
    toml = tmp_path / "merchant.toml"
    toml.write_text("# mine\nmchid = '1'\n")
    assert main(["sandbox", "--identity", str(tmp_path)]) == 2
    assert "not written by wxpay-async" in capsys.readouterr().err
    assert toml.read_text() == "# mine\nmchid = '1'\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["sandbox", "--time-scale", "0"],
        ["sandbox", "--time-scale", "-1"],
        ["sandbox", "--time-scale", "nan"],
        ["sandbox", "--latency", "-0.5"],
        ["demo", "--jobs", "0"],
        ["demo", "--concurrency", "0"],
    ],
)
def test_bad_numbers_are_usage_errors_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    identity = tmp_path / "identity"
    extra = ["--identity", str(identity)] if argv[0] == "sandbox" else []
    with pytest.raises(SystemExit) as caught:
        main([*argv, *extra])
    assert caught.value.code == 2
    assert "expected" in capsys.readouterr().err
    assert not identity.exists()


# -- merchant.toml ----------------------------------------------------------------------------


async def test_config_written_by_the_sandbox_loads(tmp_path: Path) -> None:
    async with Sandbox.start(key_mode="public_key") as sb:
        sb.identity.save(tmp_path)
        toml = write_merchant_toml(tmp_path, sb.identity, "public_key", sb.url)
        config = load_merchant_config(toml)
        assert config.credentials.mchid == sb.identity.mchid
        assert config.credentials.apiv3_key == sb.credentials.apiv3_key
        assert isinstance(config.trust, PublicKeyTrust)
        assert config.trust.key_id == sb.identity.pubkey_id
        assert config.hosts.mainland == config.hosts.weixin == sb.url
        async with config.client() as one, config.client() as two:
            assert one.trust is config.trust
            assert two.trust is not config.trust  # a trust binds to one client
            raw = await two.send(H5_STATE, path_params={"sub_mchid": DEFAULT_SUB_MCHID})
            assert raw.status == 200


def write(tmp_path: Path, text: str) -> Path:
    Identity.generate().save(tmp_path)
    path = tmp_path / "merchant.toml"
    path.write_text(text)
    return path


BASE = 'mchid = "1900000109"\nserial_no = "ABC"\nprivate_key_path = "merchant_private_key.pem"\n'
KEY = 'apiv3_key = "' + "k" * 32 + '"\n'
CERT_TRUST = '[trust]\nmode = "certificate"\n'
PK_TRUST = '[trust]\nmode = "public_key"\npublic_key_id = "{id}"\npublic_key_path = "{path}"\n'


def test_certificate_mode_and_individual_hosts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE
        + KEY
        + '[trust]\nmode = "certificate"\nregion = "hk"\n'
        + '[hosts]\nmainland = "http://127.0.0.1:1"\nfailover = true\n',
    )
    config = load_merchant_config(path)
    assert isinstance(config.trust, CertificateTrust)
    assert config.trust.region == "hk"
    assert config.hosts.mainland == "http://127.0.0.1:1"
    assert config.hosts.global_ == "https://apihk.mch.weixin.qq.com"
    assert config.hosts.failover is True


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_an_inline_apiv3_key_in_a_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, BASE + KEY + CERT_TRUST)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="wxpay_async"):
        load_merchant_config(path)
    assert "readable by others" in caplog.text
    assert "k" * 32 not in caplog.text
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="wxpay_async"):
        load_merchant_config(path)
    assert caplog.text == ""


def test_apiv3_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE + 'apiv3_key_env = "SANDBOX_TEST_KEY"\n' + CERT_TRUST)
    with pytest.raises(ValidationError) as missing:
        load_merchant_config(path)
    assert missing.value.field == "apiv3_key_env"
    monkeypatch.setenv("SANDBOX_TEST_KEY", "e" * 32)
    assert load_merchant_config(path).credentials.apiv3_key == b"e" * 32


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (KEY + CERT_TRUST, "mchid"),
        (BASE + CERT_TRUST, "apiv3_key"),
        (BASE + KEY + 'apiv3_key_env = "X"\n' + CERT_TRUST, "apiv3_key"),
        (BASE + KEY, "trust"),
        (BASE + KEY + '[trust]\nmode = "magic"\n', "trust.mode"),
        (BASE + KEY + '[trust]\nmode = "certificate"\nregion = "mars"\n', "trust.region"),
        (
            BASE + KEY + '[trust]\nmode = "public_key"\npublic_key_path = "x.pem"\n',
            "trust.public_key_id",
        ),
        (
            BASE + KEY + PK_TRUST.format(id="PUB_KEY_ID_1", path="no.pem"),
            "trust.public_key_path",
        ),
        (
            BASE + KEY + PK_TRUST.format(id="KEY_1", path="wechatpay_public_key.pem"),
            "trust.public_key_id",  # the merchant.toml key, not the argument
        ),
        (BASE + KEY + CERT_TRUST + "surprise = 1\n", "trust.surprise"),
        ("mchidd = 1\n" + BASE + KEY + CERT_TRUST, "mchidd"),
        (
            BASE + KEY + CERT_TRUST + '[hosts]\nsingle = "http://a"\nweixin = "http://b"\n',
            "hosts.single",
        ),
        (BASE + KEY + CERT_TRUST + "[hosts]\nfailover = 1\n", "hosts.failover"),
        (
            BASE + KEY + CERT_TRUST + '[hosts]\nsingle = "http://a"\nfailover = true\n',
            "hosts.failover",  # the backup would be the same URL: it could never help
        ),
        (
            BASE
            + KEY
            + CERT_TRUST
            + '[hosts]\nmainland = "http://a"\nmainland_backup = "http://a"\nfailover = true\n',
            "hosts.failover",
        ),
        (
            BASE.replace("merchant_private_key.pem", "missing.pem") + KEY + CERT_TRUST,
            "private_key_path",
        ),
        ("mchid = \n", "config"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_merchant_config(write(tmp_path, text))
    assert caught.value.field == field


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        client_from_config(tmp_path / "nope.toml")
