"""Trust defects found in review: shared downloads, migration, retirement, binding, serials."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509

from tests.conftest import vector_file
from wxpay_async import (
    CertificateTrust,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RetryPolicy,
    UnknownSerialError,
    ValidationError,
    WxPayClient,
    WxPayError,
)
from wxpay_async.trust import RawResponse, Trust, parse_certificate_download

from .conftest import APIV3_KEY
from .fake_wechat import GET, PUBLIC_KEY_ID, Answer, FakeWeChat, make_certificate

ATTEMPTS = 3


def make_client(credentials: MerchantCredentials, fake: FakeWeChat, trust: Trust) -> WxPayClient:
    return WxPayClient(
        credentials,
        trust=trust,
        hosts=Hosts.single(fake.url),
        retry=RetryPolicy(attempts=ATTEMPTS, sleep=False),
    )


def certificate_requests(fake: FakeWeChat) -> int:
    return sum(seen.path == "/v3/certificates" for seen in fake.seen)


class Clock:
    """A settable clock for ``CertificateTrust(clock=...)`` (answers are signed in real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def rfc3339(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def use_go_style_serial(fake: FakeWeChat) -> str:
    """Give ``fake`` a certificate whose serial's first byte is 0x0A, listed as the Go SDK writes
    it (``0A…``, 40 digits) rather than as the number (``A…``, 39 digits)."""
    serial = (0x0A << 152) | 0x1234_5678_9ABC_DEF0
    fake.certificate = make_certificate(fake.platform_key, days=30, serial=serial)
    fake.serial = serial.to_bytes(20, "big").hex().upper()
    assert fake.serial.startswith("0A") and len(fake.serial) == 40
    return fake.serial


def signed_list(fake: FakeWeChat, document: dict[str, Any]) -> RawResponse:
    body = json.dumps(document).encode()
    return RawResponse(status=200, headers=fake.signed_headers(body), body=body)


# -- 1. one shared download per burst -------------------------------------------------------------


async def test_concurrent_answers_under_a_new_serial_share_one_download(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    clock = Clock()
    trust = CertificateTrust(min_refresh_gap=60, clock=clock)
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        clock.now += 120  # past min_refresh_gap, well inside refresh_interval
        fake.rotate()
        await asyncio.gather(*(client.send(GET) for _ in range(20)))
    assert fake.certificate_downloads == 2
    assert trust.refresh_count == 2


async def test_a_failed_download_is_shared_not_repeated(
    credentials: MerchantCredentials, fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    fake.mode = "certificate"
    fake.certificate_failures = 10**6
    trust = CertificateTrust()
    async with make_client(credentials, fake, trust) as client:
        results = await asyncio.gather(
            *(client.send(GET) for _ in range(10)), return_exceptions=True
        )
    assert all(isinstance(result, WxPayError) for result in results)
    assert certificate_requests(fake) == ATTEMPTS  # one download and its own retries
    assert caplog.text.count("refresh failed") == 1
    assert APIV3_KEY.decode() not in caplog.text + "".join(map(str, results))


async def test_forged_serials_stay_rate_limited_when_the_download_fails(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    clock = Clock()
    trust = CertificateTrust(min_refresh_gap=60, clock=clock)
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        clock.now += 120
        fake.certificate_failures = 10**6
        for _ in range(3):
            fake.answers.append(Answer(200, {"ok": 1}, twist="serial:DEADBEEF"))
            with pytest.raises(WxPayError):
                await client.send(GET)
        # The first forged serial tried one (failing) download; the others waited for the gap.
        assert certificate_requests(fake) == 1 + ATTEMPTS
        clock.now += 61
        fake.answers.append(Answer(200, {"ok": 1}, twist="serial:DEADBEEF"))
        with pytest.raises(WxPayError):
            await client.send(GET)
        assert certificate_requests(fake) == 1 + 2 * ATTEMPTS
        # A burst of forged serials, once the gap has passed: still one download.
        clock.now += 61
        fake.certificate_failures = 0
        fake.answers.extend(Answer(200, {"ok": 1}, twist="serial:DEADBEEF") for _ in range(10))
        results = await asyncio.gather(
            *(client.send(GET) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(result, UnknownSerialError) for result in results)
        assert fake.certificate_downloads == 2
        # The held certificate kept serving throughout.
        await client.send(GET)


async def test_concurrent_forced_refreshes_share_downloads(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    trust = CertificateTrust()
    async with make_client(credentials, fake, trust):
        await asyncio.gather(*(trust.refresh(force=True) for _ in range(5)))
        # The first starts a download; the others arrive while it runs, so they need one that
        # starts after their call: they wait it out and share the next.
        assert fake.certificate_downloads == 2
        await asyncio.gather(*(trust.refresh() for _ in range(5)))
        assert fake.certificate_downloads == 3


async def test_a_cancelled_caller_does_not_cancel_the_shared_download(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    trust = CertificateTrust()
    async with make_client(credentials, fake, trust):
        first = asyncio.ensure_future(trust.refresh())
        second = asyncio.ensure_future(trust.refresh())
        await asyncio.sleep(0)
        first.cancel()
        await second
        assert first.cancelled()
    assert fake.certificate_downloads == 1
    assert trust.refresh_count == 1
    assert [c.serial_no for c in trust.certificates] == [fake.serial]


# -- 2. migration: the public key may sign the certificate list -----------------------------------


async def test_migration_accepts_a_list_signed_with_the_public_key(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "public_key"  # WeChat signs every answer, the list included, with PUB_KEY_ID
    public = PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem)
    certs = CertificateTrust()
    async with make_client(credentials, fake, public | certs) as client:
        await client.send(GET)
        fake.answers.append(Answer(twist=f"serial:{fake.serial}"))
        await client.send(GET)  # signed by the platform certificate: downloads the list
    assert fake.certificate_downloads == 1
    assert [c.serial_no for c in certs.certificates] == [fake.serial]


async def test_certificate_trust_alone_refuses_a_list_signed_with_a_public_key(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "public_key"
    certs = CertificateTrust()
    async with make_client(credentials, fake, certs) as client:
        with pytest.raises(UnknownSerialError, match="certificate list signed by PUB_KEY_ID"):
            await client.send(GET)
    assert certs.certificates == []


# -- 3. retired and expired certificates ----------------------------------------------------------


async def test_a_certificate_the_list_declares_expired_is_dropped(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    clock = Clock()
    trust = CertificateTrust(refresh_interval=3600, clock=clock)
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        old, old_entry = fake.serial, fake.certificate_list()["data"][0]
        fake.rotate()
        listing: Callable[[], dict[str, Any]] = fake.certificate_list
        # WeChat moved the old certificate's expire_time into the past; the new one signs.
        past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        old_entry["expire_time"] = rfc3339(past)
        fake.certificate_list = lambda: {"data": [old_entry, *listing()["data"]]}  # type: ignore[method-assign]
        clock.now += 3601
        await client.send(GET)  # the timed refresh downloads the list
        assert fake.certificate_downloads == 2
        assert not trust.knows(old)
        assert [c.serial_no for c in trust.certificates] == [fake.serial]
        assert (await trust.encryption_key())[0] == fake.serial
        with pytest.raises(UnknownSerialError):
            await trust.verification_key(old)


async def test_an_unlisted_certificate_verifies_only_while_valid(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    clock = Clock()
    trust = CertificateTrust(refresh_interval=3600, clock=clock)
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        old = fake.serial
        fake.rotate()  # the list now holds only the new certificate
        clock.now += 3601
        await client.send(GET)
        # Rotation window: answers signed with the old certificate still verify.
        assert {c.serial_no for c in trust.certificates} == {old, fake.serial}
        assert await trust.verification_key(old)
        clock.now += 400 * 86400  # the old certificate's notAfter (365 days) has passed
        await client.send(GET)
        assert [c.serial_no for c in trust.certificates] == [fake.serial]
        with pytest.raises(UnknownSerialError):
            await trust.verification_key(old)


async def test_rotation_grace_verifies_but_never_encrypts(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    """An answer signed with the old certificate moments after its (moved) expire_time."""
    fake.mode = "certificate"
    clock = Clock()
    trust = CertificateTrust(refresh_interval=3600, min_refresh_gap=3600, clock=clock)
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        old, old_key, old_entry = fake.serial, fake.platform_key, fake.certificate_list()["data"][0]
        fake.rotate()
        listing = fake.certificate_list
        old_entry["expire_time"] = rfc3339(dt.datetime.fromtimestamp(clock.now + 3600, dt.UTC))
        fake.certificate_list = lambda: {"data": [old_entry, *listing()["data"]]}  # type: ignore[method-assign]
        await trust.refresh(force=True)
        clock.now += 3600 + 60  # a minute past the old certificate's listed expire_time
        await trust.verification_key(fake.serial)  # the timed refresh: the list still has it
        assert trust.refresh_count == 3
        assert {c.serial_no for c in trust.certificates} == {old, fake.serial}
        fake.platform_key = old_key
        fake.answers.append(Answer(200, {"ok": 1}, twist=f"serial:{old}"))
        await client.send(GET)
        clock.now += 600  # well past: no longer trusted
        fake.answers.append(Answer(200, {"ok": 1}, twist=f"serial:{old}"))
        with pytest.raises(UnknownSerialError):
            await client.send(GET)


def test_list_dates_tighten_the_certificate_validity(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    now = dt.datetime.now(dt.UTC)
    document = fake.certificate_list()
    document["data"][0]["expire_time"] = rfc3339(now + dt.timedelta(days=10))
    (cert,) = parse_certificate_download(signed_list(fake, document), APIV3_KEY)
    assert cert.expire_time == (now + dt.timedelta(days=10)).replace(microsecond=0)
    assert cert.effective_time == fake.certificate.not_valid_before_utc
    # Valid by its X.509 dates, but the list says it is not effective yet: dropped, so
    # nothing valid signed the list.
    document["data"][0]["effective_time"] = rfc3339(now + dt.timedelta(days=1))
    with pytest.raises(UnknownSerialError):
        parse_certificate_download(signed_list(fake, document), APIV3_KEY)


async def test_a_certificate_verifies_within_the_grace_but_never_encrypts() -> None:
    pem = vector_file("tv1_certificate.pem")
    not_after = x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    now = [not_after + 60]
    trust = CertificateTrust(certificates=[pem], clock=lambda: now[0])
    assert await trust.verification_key("F5765756002FDD77")
    with pytest.raises(UnknownSerialError, match="no valid platform certificate"):
        await trust.encryption_key()
    now[0] = not_after + 301
    with pytest.raises(UnknownSerialError):
        await trust.verification_key("F5765756002FDD77")


async def test_an_expired_preloaded_certificate_does_not_verify() -> None:
    trust = CertificateTrust(
        certificates=[vector_file("tv1_certificate.pem")],
        clock=lambda: dt.datetime(2035, 1, 1, tzinfo=dt.UTC).timestamp(),
    )
    assert not trust.knows("F5765756002FDD77")
    with pytest.raises(UnknownSerialError, match="F5765756002FDD77"):
        await trust.verification_key("F5765756002FDD77")


# -- 4. one client per CertificateTrust -----------------------------------------------------------


async def test_a_trust_cannot_serve_two_open_clients(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    trust = CertificateTrust()
    first = make_client(credentials, fake, trust)
    with pytest.raises(ValidationError) as caught:
        make_client(credentials, fake, trust)
    assert caught.value.field == "trust"
    assert "one WxPayClient at a time" in str(caught.value)
    async with first as client:  # the first client is untouched
        fake.mode = "certificate"
        await client.send(GET)
    assert fake.certificate_downloads == 1


async def test_a_trust_rebinds_once_its_client_is_closed(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    trust = CertificateTrust(min_refresh_gap=0)
    async with make_client(credentials, fake, trust) as first:
        await first.send(GET)
    async with make_client(credentials, fake, trust) as second:
        fake.rotate()
        await second.send(GET)  # downloads through the second client
    assert fake.certificate_downloads == 2


async def test_a_combined_trust_binds_all_members_or_none(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    certs = CertificateTrust(min_refresh_gap=0)
    public = PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem)
    async with make_client(credentials, fake, certs) as first:
        with pytest.raises(ValidationError, match="trust"):
            make_client(credentials, fake, public | certs)
        fake.rotate()
        await first.send(GET)  # still downloads through the first client
    assert fake.certificate_downloads == 1


# -- 5. serials compared as numbers ---------------------------------------------------------------


def test_a_listed_serial_with_a_leading_zero(fake: FakeWeChat) -> None:
    fake.mode = "certificate"
    listed = use_go_style_serial(fake)
    (cert,) = parse_certificate_download(signed_list(fake, fake.certificate_list()), APIV3_KEY)
    assert cert.serial_no == listed  # kept as WeChat spells it: sent back in Wechatpay-Serial
    assert cert.serial_number == fake.certificate.serial_number


async def test_the_encryption_serial_is_the_listed_spelling(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    listed = use_go_style_serial(fake)
    trust = CertificateTrust()
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)  # Wechatpay-Serial: 0A…
        assert await trust.encryption_key() == (listed, trust.certificates[0].public_key)
        fake.answers.append(Answer(200, {"ok": 1}, twist=f"serial:{listed[1:]}"))
        await client.send(GET)  # the same serial without its leading zero
    assert fake.certificate_downloads == 1


async def test_wechatpay_serial_is_compared_as_a_number(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.mode = "certificate"
    trust = CertificateTrust()
    async with make_client(credentials, fake, trust) as client:
        await client.send(GET)
        for spelling in (fake.serial.lower(), "00" + fake.serial):
            fake.answers.append(Answer(200, {"ok": 1}, twist=f"serial:{spelling}"))
            await client.send(GET)
            assert trust.knows(spelling)
    assert fake.certificate_downloads == 1
    assert not trust.knows("0x" + fake.serial)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0A1B", 0xA1B),
        ("a1b", 0xA1B),
        ("000A1B", 0xA1B),
        ("", None),
        ("0x1A", None),
        ("-1A", None),
        ("1_A", None),
        (" 1A", None),
        ("PUB_KEY_ID_0114232134912410000000000000", None),
        ("F" * 65, None),
    ],
)
def test_parse_serial(text: str, number: int | None) -> None:
    from wxpay_async.crypto.keys import parse_serial

    assert parse_serial(text) == number
