"""Property: no mutation of a valid notification (body bytes or headers) is ever accepted."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxpay_async import DecryptionError, MalformedNotificationError, SignatureVerificationError
from wxpay_async.crypto import load_private_key
from wxpay_async.notify import NotificationVerifier
from wxpay_async.trust import CertificateTrust, PublicKeyTrust

from ._factory import APIV3_KEY, KEY_ID, NotificationFactory

VECTORS = Path(__file__).parent.parent / "vectors"
TV4: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text())["tv4"]
BODY: bytes = TV4["body"].encode()
HEADERS: dict[str, str] = TV4["headers"]
REFUSED = (SignatureVerificationError, DecryptionError, MalformedNotificationError)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # leave no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as run:
        yield run


@pytest.fixture(scope="module")
def verifier() -> NotificationVerifier:
    trust = CertificateTrust(certificates=[(VECTORS / TV4["certificate_file"]).read_bytes()])
    return NotificationVerifier(
        apiv3_key=TV4["apiv3_key"],
        trust=trust,
        allow_short_key=True,
        clock=lambda: float(TV4["frozen_now_unix"]),
    )


def refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, headers: Any, body: bytes
) -> Exception:
    try:
        notification = runner.run(verifier.parse(headers, body))
    except REFUSED as exc:
        return exc
    raise AssertionError(f"mutation accepted: {notification!r}")


def test_the_unmutated_vector_is_accepted(
    runner: asyncio.Runner, verifier: NotificationVerifier
) -> None:
    assert runner.run(verifier.parse(HEADERS, BODY)).id == TV4["expected"]["id"]


flip = st.tuples(st.integers(0, len(BODY) - 1), st.integers(1, 255))
insert = st.tuples(st.integers(0, len(BODY)), st.binary(min_size=1, max_size=8))
delete = st.tuples(st.integers(0, len(BODY) - 1), st.integers(1, 16))


@PROPERTY
@given(flip)
def test_byte_flips_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, change: tuple[int, int]
) -> None:
    at, mask = change
    body = bytearray(BODY)
    body[at] ^= mask
    refused(runner, verifier, HEADERS, bytes(body))


@PROPERTY
@given(insert)
def test_insertions_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, change: tuple[int, bytes]
) -> None:
    at, extra = change
    refused(runner, verifier, HEADERS, BODY[:at] + extra + BODY[at:])


@PROPERTY
@given(delete)
def test_deletions_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, change: tuple[int, int]
) -> None:
    at, size = change
    refused(runner, verifier, HEADERS, BODY[:at] + BODY[at + size :])


header_text = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)


@PROPERTY
@given(
    st.sampled_from(
        ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"]
    ),
    header_text,
)
def test_header_values_replaced_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, name: str, value: str
) -> None:
    if value == HEADERS[name]:
        return
    refused(runner, verifier, dict(HEADERS, **{name: value}), BODY)


@PROPERTY
@given(st.integers(-299, 299).filter(bool))
def test_timestamps_inside_the_window_but_altered_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, offset: int
) -> None:
    timestamp = str(int(HEADERS["Wechatpay-Timestamp"]) + offset)
    exc = refused(runner, verifier, dict(HEADERS, **{"Wechatpay-Timestamp": timestamp}), BODY)
    assert type(exc) is SignatureVerificationError  # the window passed; the signature did not


@PROPERTY
@given(st.integers(0, 255), st.integers(1, 255))
def test_signature_bit_changes_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, at: int, mask: int
) -> None:
    raw = bytearray(base64.b64decode(HEADERS["Wechatpay-Signature"]))
    raw[at % len(raw)] ^= mask
    headers = dict(HEADERS, **{"Wechatpay-Signature": base64.b64encode(raw).decode()})
    refused(runner, verifier, headers, BODY)


@PROPERTY
@given(header_text.filter(lambda v: v != "WECHATPAY2-SHA256-RSA2048"))
def test_other_signature_types_are_refused(
    runner: asyncio.Runner, verifier: NotificationVerifier, value: str
) -> None:
    refused(runner, verifier, dict(HEADERS, **{"Wechatpay-Signature-Type": value}), BODY)


@PROPERTY
@given(st.sets(st.sampled_from(sorted(HEADERS)), min_size=1))
def test_removed_headers_are_refused_unless_optional(
    runner: asyncio.Runner, verifier: NotificationVerifier, removed: set[str]
) -> None:
    headers = {k: v for k, v in HEADERS.items() if k not in removed}
    if removed == {"Content-Type"}:
        assert runner.run(verifier.parse(headers, BODY)).id  # not a signed header
        return
    refused(runner, verifier, headers, BODY)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def signer() -> tuple[NotificationFactory, NotificationVerifier]:
    key = load_private_key((VECTORS / "tv1_private_key.pem").read_bytes())
    factory = NotificationFactory(key)
    trust = PublicKeyTrust(KEY_ID, key.public_key())
    return factory, NotificationVerifier(
        apiv3_key=APIV3_KEY, trust=trust, clock=lambda: factory.now
    )


@settings(PROPERTY, max_examples=60)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_any_resource_round_trips(
    runner: asyncio.Runner,
    signer: tuple[NotificationFactory, NotificationVerifier],
    resource: dict[str, Any],
) -> None:
    factory, verifier = signer
    headers, body = factory.make(resource, event_type="CUSTOM.EVENT")
    assert runner.run(verifier.parse(headers, body)).resource == resource
