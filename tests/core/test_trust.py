"""Platform certificates, the public key, and their combination."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from tests.conftest import vector_file
from wxpay_async import (
    CertificateTrust,
    CombinedTrust,
    DecryptionError,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RetryPolicy,
    SignatureVerificationError,
    UnknownSerialError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.crypto import load_public_key
from wxpay_async.trust import PlatformCertificate, RawResponse, parse_certificate_download

from .conftest import APIV3_KEY
from .fake_wechat import GET, PUBLIC_KEY_ID, Answer, FakeWeChat


def certificate_client(
    credentials: MerchantCredentials, fake: FakeWeChat, trust: CertificateTrust
) -> WxPayClient:
    fake.mode = "certificate"
    return WxPayClient(
        credentials,
        trust=trust,
        hosts=Hosts.single(fake.url),
        retry=RetryPolicy(sleep=False),
    )


async def test_first_use_downloads_and_verifies(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust()
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        await client.send(GET)
    assert fake.certificate_downloads == 1
    assert [c.serial_no for c in trust.certificates] == [fake.serial]
    # The first answer names a serial we don't hold yet: that is what triggers the download.
    assert [s.path for s in fake.seen] == ["/v3/thing", "/v3/certificates", "/v3/thing"]


@pytest.mark.parametrize(
    ("region", "path"),
    [
        ("mainland", "/v3/certificates"),
        ("global", "/v3/global/certificates"),
        ("hk", "/hk/v3/certificates"),
    ],
)
async def test_region_selects_the_documented_path(
    credentials: MerchantCredentials, fake: FakeWeChat, region: str, path: str
) -> None:
    trust = CertificateTrust(region=region)  # type: ignore[arg-type]
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
    assert fake.seen[1].path == path


async def test_unknown_serial_triggers_exactly_one_refresh(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust(min_refresh_gap=0)
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        assert fake.certificate_downloads == 1
        fake.rotate()  # the list is now signed by (and contains) a certificate we don't hold
        await client.send(GET)
        assert fake.certificate_downloads == 2
        await client.send(GET)
        assert fake.certificate_downloads == 2
        fake.answers.append(Answer(200, {"ok": 1}, twist="serial:DEADBEEF"))
        with pytest.raises(UnknownSerialError):
            await client.send(GET)
        assert fake.certificate_downloads == 3  # one refresh for the forged serial, then fail
    assert len(trust.certificates) == 2


async def test_refresh_gap_limits_forced_downloads(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust(min_refresh_gap=3600)
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        for _ in range(3):
            fake.answers.append(Answer(200, {"ok": 1}, twist="serial:DEADBEEF"))
            with pytest.raises(UnknownSerialError):
                await client.send(GET)
    assert fake.certificate_downloads == 1


async def test_timer_refresh(credentials: MerchantCredentials, fake: FakeWeChat) -> None:
    now = [dt.datetime.now(dt.UTC).timestamp()]
    trust = CertificateTrust(refresh_interval=60, clock=lambda: now[0])
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        now[0] += 30
        await client.send(GET)
        assert fake.certificate_downloads == 1
        now[0] += 31
        await client.send(GET)
        assert fake.certificate_downloads == 2


async def test_failed_timer_refresh_keeps_held_certificates(
    credentials: MerchantCredentials, fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    now = [dt.datetime.now(dt.UTC).timestamp()]
    trust = CertificateTrust(refresh_interval=60, clock=lambda: now[0])
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        now[0] += 120
        fake.certificate_failures = 4
        await client.send(GET)  # refresh failed, the held certificate still verifies
    assert fake.certificate_failures == 0  # the refresh really was attempted
    assert fake.certificate_downloads == 1
    assert len(trust.certificates) == 1
    assert "refresh failed" in caplog.text


async def test_encryption_key_is_the_newest_valid_certificate(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust(min_refresh_gap=0)
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        first = fake.serial
        fake.rotate()
        await trust.refresh(force=True)
    serial, key = await trust.encryption_key()
    assert serial == fake.serial != first
    assert key.public_numbers() == fake.platform_key.public_key().public_numbers()


def _signed_list(fake: FakeWeChat, body: bytes, serial: str | None = None) -> RawResponse:
    headers = fake.signed_headers(body)
    if serial:
        headers["Wechatpay-Serial"] = serial
    return RawResponse(status=200, headers=headers, body=body)


def test_download_signed_by_a_listed_certificate_is_accepted(fake: FakeWeChat) -> None:
    body = json.dumps(fake.certificate_list()).encode()
    fake.mode = "certificate"
    certs = parse_certificate_download(_signed_list(fake, body), APIV3_KEY)
    assert [c.serial_no for c in certs] == [fake.serial]


def test_download_with_wrong_apiv3_key_fails(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    body = json.dumps(fake.certificate_list()).encode()
    with pytest.raises(DecryptionError):
        parse_certificate_download(_signed_list(fake, body), b"x" * 32)


def test_download_with_lying_serial_fails(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    document = fake.certificate_list()
    document["data"][0]["serial_no"] = "ABCDEF"
    body = json.dumps(document).encode()
    with pytest.raises(SignatureVerificationError, match="does not match"):
        parse_certificate_download(_signed_list(fake, body), APIV3_KEY)


def test_download_with_tampered_body_fails(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    body = json.dumps(fake.certificate_list()).encode()
    raw = _signed_list(fake, body)
    tampered = RawResponse(
        status=200, headers=raw.headers, body=body.replace(b'"data"', b' "data"')
    )
    with pytest.raises(SignatureVerificationError):
        parse_certificate_download(tampered, APIV3_KEY)


def test_download_signed_by_an_unknown_key_fails(fake: FakeWeChat) -> None:
    body = json.dumps(fake.certificate_list()).encode()
    with pytest.raises(UnknownSerialError):
        parse_certificate_download(_signed_list(fake, body, serial="OTHER"), APIV3_KEY)


def test_expired_certificates_are_dropped(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    body = json.dumps(fake.certificate_list()).encode()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
    with pytest.raises(UnknownSerialError):  # its only certificate is gone, so is the signer
        parse_certificate_download(_signed_list(fake, body), APIV3_KEY, now=later)


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"data": 3}'])
def test_download_that_is_not_the_documented_json_fails(fake: FakeWeChat, body: bytes) -> None:
    with pytest.raises(SignatureVerificationError):
        parse_certificate_download(_signed_list(fake, body), APIV3_KEY)


async def test_preloaded_certificates_without_a_client() -> None:
    pem = vector_file("tv4_certificate.pem")
    trust = CertificateTrust(certificates=[pem])
    key = await trust.verification_key("D7CE59D1F522D701")
    assert key.public_numbers() == load_public_key(pem).public_numbers()
    with pytest.raises(UnknownSerialError, match="OTHER"):
        await trust.verification_key("OTHER")


async def test_public_key_trust(fake: FakeWeChat) -> None:
    trust = PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem)
    assert await trust.encryption_key() == (PUBLIC_KEY_ID, trust.public_key)
    with pytest.raises(UnknownSerialError):
        await trust.verification_key("PUB_KEY_ID_OTHER")
    with pytest.raises(ValidationError, match="key_id"):
        PublicKeyTrust("1234", fake.public_key_pem)
    with pytest.raises(ValidationError, match="public_key"):
        PublicKeyTrust(PUBLIC_KEY_ID, "not a key")


async def test_combined_trust_during_migration(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    other = FakeWeChat(APIV3_KEY)
    public = PublicKeyTrust(PUBLIC_KEY_ID, other.public_key_pem)
    certs = CertificateTrust()
    combined = public | certs
    async with certificate_client(credentials, fake, certs) as _:
        pass
    client = WxPayClient(
        credentials, trust=combined, hosts=Hosts.single(fake.url), retry=RetryPolicy(sleep=False)
    )
    async with client:
        fake.mode = "certificate"
        await client.send(GET)  # signed by a certificate: downloaded through the combined trust
        assert fake.certificate_downloads == 1
    assert combined.knows(PUBLIC_KEY_ID)
    assert combined.knows(fake.serial)
    assert await combined.encryption_key() == (PUBLIC_KEY_ID, public.public_key)
    assert len((combined | public).members) == 3


def test_platform_certificate_from_tv1() -> None:
    cert = PlatformCertificate.from_pem(vector_file("tv1_certificate.pem"))
    assert cert.serial_no == "F5765756002FDD77"
    assert "BEGIN CERTIFICATE" in cert.pem
    assert cert.valid_at(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert not cert.valid_at(dt.datetime(2032, 1, 1, tzinfo=dt.UTC))


async def test_failed_refresh_is_retried_after_the_short_gap(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    now = [dt.datetime.now(dt.UTC).timestamp()]
    trust = CertificateTrust(refresh_interval=3600, min_refresh_gap=60, clock=lambda: now[0])
    async with certificate_client(credentials, fake, trust) as client:
        await client.send(GET)
        now[0] += 3601
        fake.certificate_failures = 4  # every attempt of the timed refresh fails
        await client.send(GET)
        assert fake.certificate_downloads == 1
        now[0] += 61
        await client.send(GET)  # one gap later, not one interval later
        assert fake.certificate_downloads == 2


async def test_concurrent_refreshes_share_one_download(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust()
    async with certificate_client(credentials, fake, trust) as client:
        await asyncio.gather(*(client.send(GET) for _ in range(10)))
    assert fake.certificate_downloads == 1
    assert trust.refresh_count == 1


def test_unsupported_certificate_algorithm(fake: FakeWeChat) -> None:
    document = fake.certificate_list()
    document["data"][0]["encrypt_certificate"]["algorithm"] = "AEAD_SM4_GCM"
    raw = _signed_list(fake, json.dumps(document).encode())
    with pytest.raises(DecryptionError, match="AEAD_SM4_GCM"):
        parse_certificate_download(raw, APIV3_KEY)


async def test_trust_construction_rules_and_reprs(fake: FakeWeChat) -> None:
    with pytest.raises(ValidationError, match="region"):
        CertificateTrust(region="eu")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least one"):
        CombinedTrust()
    expired_only = CertificateTrust(
        certificates=[vector_file("tv1_certificate.pem")],
        clock=lambda: dt.datetime(2035, 1, 1, tzinfo=dt.UTC).timestamp(),
    )
    with pytest.raises(UnknownSerialError, match="no valid platform certificate"):
        await expired_only.encryption_key()
    public = PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem)
    combined = CombinedTrust(public, CertificateTrust())
    with pytest.raises(UnknownSerialError):
        await combined.verification_key("SOMEONE")
    assert PUBLIC_KEY_ID in repr(combined)
    assert "F5765756002FDD77" in repr(expired_only)
