"""Inputs refused before anything is sent, each as a ValidationError naming the field: keys,
paddings, configuration, retry settings, hosts; and what decryption refuses."""

from __future__ import annotations

import base64
import math
import random
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import vector_file
from wxpay_async import (
    CombinedTrust,
    DecryptionError,
    Endpoint,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RetryPolicy,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    ValidationError,
)
from wxpay_async.config_file import load_merchant_config
from wxpay_async.crypto import (
    Padding,
    SignedHeaders,
    aead_decrypt,
    check_timestamp,
    decrypt_field,
    encrypt_field,
    load_private_key,
    load_public_key,
    max_plaintext_bytes,
)
from wxpay_async.trust import RawResponse, parse_certificate_download

from .conftest import APIV3_KEY

#: A throwaway SM2 (national-crypto) key, which `cryptography` cannot load.
SM2_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgLFpijPwTBKLXMTgD
yURO97p+SLk3HAWXabKyAipd89+hRANCAATZ3zdZrpJUMCAvgGK7mPvyowPOzG9l
bWN1/GlQQHUjrpAKlEDWp5hQsGZBXlzzdobqJoTTPQkHZJAeH97F7kAz
-----END PRIVATE KEY-----
"""


#: Long enough to pass the GCM tag-length check, so the other inputs are what is judged.
CIPHERTEXT = base64.b64encode(bytes(32)).decode()


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- paddings ------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["OAEP", Padding.OAEP])
def test_a_padding_named_by_its_string_is_that_padding(
    key: rsa.RSAPrivateKey, spelling: Any
) -> None:
    ciphertext = encrypt_field(key.public_key(), "secret", spelling)
    # Only OAEP decrypts it: the string "OAEP" used to select PKCS#1 v1.5.
    raw = base64.b64decode(ciphertext)
    assert key.decrypt(raw, padding.OAEP(padding.MGF1(_sha1()), _sha1(), None)) == b"secret"
    assert decrypt_field(key, ciphertext, "OAEP") == "secret"
    assert max_plaintext_bytes(2048, spelling) == 214
    endpoint = Endpoint(name="e", method="POST", host="mainland", path="/p", padding=spelling)
    assert endpoint.padding is Padding.OAEP


def _sha1() -> hashes.HashAlgorithm:
    return hashes.SHA1()  # OAEP-SHA1: the v3 field encryption


@pytest.mark.parametrize("bad", ["oaep", "RSA", 1, None])
def test_an_unknown_padding_is_refused(key: rsa.RSAPrivateKey, bad: Any) -> None:
    for attempt in (
        lambda: encrypt_field(key.public_key(), "x", bad),
        lambda: max_plaintext_bytes(2048, bad),
        lambda: Endpoint(name="e", method="POST", host="mainland", path="/p", padding=bad),
    ):
        with pytest.raises(ValidationError) as info:
            attempt()
        assert info.value.field == "padding"


def test_a_plaintext_too_long_for_the_padding_is_a_validation_error(
    key: rsa.RSAPrivateKey,
) -> None:
    with pytest.raises(ValidationError) as info:
        encrypt_field(key.public_key(), "x" * 215, Padding.OAEP)
    assert info.value.field == "plaintext"
    assert "x" * 20 not in str(info.value)


def test_pkcs1_noise_from_a_wrong_key_is_refused_when_it_cannot_be_text() -> None:
    # OpenSSL's implicit rejection answers a bad PKCS#1 v1.5 padding with pseudo-random bytes.
    # A fixed key and fixed inputs, so the same cases (four) come up on every run.
    key = load_private_key(vector_file("tv1_private_key.pem"))
    n = key.public_key().public_numbers().n
    rng = random.Random(7)
    refusable = 0
    for _ in range(300):
        raw = rng.randrange(n).to_bytes(256, "big")
        try:
            plain = key.decrypt(raw, padding.PKCS1v15()).decode()
        except (ValueError, UnicodeDecodeError):
            continue
        if plain and all(ch.isprintable() or unicodedata.category(ch) == "Zs" for ch in plain):
            continue
        refusable += 1  # UTF-8 noise that is empty or holds control or format characters
        with pytest.raises(DecryptionError):
            decrypt_field(key, base64.b64encode(raw).decode(), Padding.PKCS1V15)
    assert refusable > 0


@pytest.mark.parametrize("name", ["陳\u3000大文", "Tom\u00a0Lee", "Ann\u202fBo", "李 小龍"])
def test_pkcs1_fields_with_any_kind_of_space_decrypt(key: rsa.RSAPrivateKey, name: str) -> None:
    # str.isprintable() is False for U+3000 and U+00A0: names that HK contacts do hold.
    ciphertext = encrypt_field(key.public_key(), name, Padding.PKCS1V15)
    assert decrypt_field(key, ciphertext, Padding.PKCS1V15) == name


@pytest.mark.parametrize("text", ["a\x00b", "a\u202eb", "a\u2028b", "\ue000"])
def test_pkcs1_fields_with_control_or_format_characters_are_refused(
    key: rsa.RSAPrivateKey, text: str
) -> None:
    ciphertext = encrypt_field(key.public_key(), text, Padding.PKCS1V15)
    with pytest.raises(DecryptionError):
        decrypt_field(key, ciphertext, Padding.PKCS1V15)


# -- AES-GCM inputs read from JSON ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("nonce", "aad", "ciphertext"),
    [(123, "certificate", CIPHERTEXT), ("n" * 12, 5, CIPHERTEXT), ("n" * 12, None, None)],
)
def test_non_string_aead_inputs_are_a_decryption_error(
    nonce: Any, aad: Any, ciphertext: Any
) -> None:
    with pytest.raises(DecryptionError):
        aead_decrypt(APIV3_KEY, nonce, aad, ciphertext)


# -- keys -----------------------------------------------------------------------------------


def test_an_sm2_key_is_refused_as_not_rsa() -> None:
    for load, field in ((load_private_key, "private_key"), (load_public_key, "public_key")):
        with pytest.raises(ValidationError) as info:
            load(SM2_KEY)  # type: ignore[operator]
        assert info.value.field == field


def test_small_keys_are_refused_however_they_arrive() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    public_pem = small.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for attempt in (
        lambda: load_private_key(small),
        lambda: load_public_key(small.public_key()),
        lambda: load_public_key(public_pem),
        lambda: PublicKeyTrust("PUB_KEY_ID_1", small.public_key()),
    ):
        with pytest.raises(ValidationError) as info:
            attempt()
        assert "2048 bits" in info.value.rule


@pytest.mark.parametrize(
    ("apiv3_key", "rule"),
    [
        (32, "str or bytes"),
        ([0] * 32, "str or bytes"),
        (None, "str or bytes"),
        ("é" * 16, "ASCII"),  # 32 bytes as UTF-8, but not the documented 32 ASCII characters
        ("short", "32 bytes"),
    ],
)
def test_the_apiv3_key_must_be_32_ascii_characters(
    rsa_key_pem: bytes, apiv3_key: Any, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        MerchantCredentials(
            mchid="1900000109", serial_no="ABC123", private_key=rsa_key_pem, apiv3_key=apiv3_key
        )
    assert info.value.field == "apiv3_key"
    assert rule in info.value.rule


# -- retry policy, hosts, window ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": -1.0}, "deadline"),
        ({"deadline": "30"}, "deadline"),
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"wait_initial": -0.1}, "wait_initial"),
        ({"wait_max": math.inf}, "wait_max"),
        ({"wait_jitter": math.nan}, "wait_jitter"),
        ({"min_attempt_time": math.nan}, "min_attempt_time"),
        ({"min_attempt_time": -1}, "min_attempt_time"),
    ],
)
def test_retry_settings_are_checked(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetryPolicy(**options)
    assert info.value.field == field


def test_no_deadline_is_allowed() -> None:
    assert RetryPolicy(deadline=None).deadline is None


@pytest.mark.parametrize(
    "url", ["api.mch.weixin.qq.com", "ftp://api.mch.weixin.qq.com", "https://", "https://x?a=1"]
)
def test_a_host_must_be_an_http_base_url(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        Hosts(global_=url)
    assert info.value.field == "hosts.global_"
    assert Hosts(global_="http://127.0.0.1:8480/").global_ == "http://127.0.0.1:8480"


def test_a_nan_window_refuses_every_timestamp() -> None:
    signed = SignedHeaders(timestamp="1", nonce="n", signature="s", serial="PUB_KEY_ID_1")
    with pytest.raises(TimestampOutOfWindowError):
        check_timestamp(signed, math.nan, clock=lambda: 2.0)  # fails closed


# -- merchant.toml ----------------------------------------------------------------------------


def write_config(tmp_path: Path, rsa_key_pem: bytes, text: str) -> Path:
    (tmp_path / "key.pem").write_bytes(rsa_key_pem)
    path = tmp_path / "merchant.toml"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = 'mchid = "1900000109"\nserial_no = "ABC123"\nprivate_key_path = "key.pem"\n'


def public_key_pem(tmp_path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "wechatpay.pem").write_bytes(pem)
    return "wechatpay.pem"


def test_a_config_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "merchant.toml"
    path.write_bytes(b'mchid = "\xff\xfe"\n')
    with pytest.raises(ValidationError) as info:
        load_merchant_config(path)
    assert info.value.field == "config"
    assert "UTF-8" in info.value.rule


def test_config_errors_name_the_files_keys(
    tmp_path: Path, rsa_key_pem: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_APIV3_KEY", "too short")
    text = HEAD + 'apiv3_key_env = "TEST_APIV3_KEY"\n[trust]\nmode = "certificate"\n'
    with pytest.raises(ValidationError) as info:
        load_merchant_config(write_config(tmp_path, rsa_key_pem, text))
    assert info.value.field == "apiv3_key_env"
    (tmp_path / "bad.pem").write_text("not a key")
    text = HEAD.replace("key.pem", "bad.pem") + f'apiv3_key = "{APIV3_KEY.decode()}"\n'
    text += '[trust]\nmode = "certificate"\n'
    with pytest.raises(ValidationError) as info:
        load_merchant_config(write_config(tmp_path, rsa_key_pem, text))
    assert info.value.field == "private_key_path"


def test_a_combined_trust_serves_a_migration(tmp_path: Path, rsa_key_pem: bytes) -> None:
    name = public_key_pem(tmp_path)
    text = HEAD + f'apiv3_key = "{APIV3_KEY.decode()}"\n[trust]\nmode = "combined"\n'
    text += (
        f'public_key_id = "PUB_KEY_ID_0114232134912410000000000000"\npublic_key_path = "{name}"\n'
    )
    text += 'region = "hk"\n'
    config = load_merchant_config(write_config(tmp_path, rsa_key_pem, text))
    assert isinstance(config.trust, CombinedTrust)
    kinds = [type(member).__name__ for member in config.trust.members]
    assert kinds == ["PublicKeyTrust", "CertificateTrust"]  # encrypts with the public key
    assert config.trust.members[1].region == "hk"  # type: ignore[attr-defined]
    other = config.client().trust, config.client().trust  # later clients get fresh trusts
    assert other[0] is not other[1]


def test_a_bad_single_host_names_the_files_key(tmp_path: Path, rsa_key_pem: bytes) -> None:
    text = HEAD + f'apiv3_key = "{APIV3_KEY.decode()}"\n[trust]\nmode = "certificate"\n'
    text += '[hosts]\nsingle = "127.0.0.1:8480"\n'  # no scheme
    with pytest.raises(ValidationError) as info:
        load_merchant_config(write_config(tmp_path, rsa_key_pem, text))
    assert info.value.field == "hosts.single"


def test_a_certificate_list_too_deep_to_parse_is_refused_as_unverified() -> None:
    # Read before its signature is checked: any proxy could have written it.
    answer = RawResponse(status=200, headers={}, body=b"[" * 200_000)
    with pytest.raises(SignatureVerificationError):
        parse_certificate_download(answer, APIV3_KEY)
