"""WxPayClient.send through retry → sign → verify, against a scripted peer."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from wxpay_async import (
    BadRequestError,
    Endpoint,
    Hosts,
    MerchantCredentials,
    PublicKeyTrust,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SignatureProbeError,
    SignatureRejectedError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    TransportError,
    UnknownSerialError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.crypto import build_request_message, parse_authorization, verify_signature

from .fake_wechat import PUBLIC_KEY_ID, Answer, FakeWeChat

GET = Endpoint(
    name="h5.state",
    method="GET",
    host="global_",
    path="/v3/global/merchant/h5/permission/{sub_mchid}",
)
CREATE = Endpoint(
    name="hk.create", method="POST", host="mainland", path="/hk/v3/merchants", idempotency_key=True
)
UNSAFE_POST = Endpoint(name="unsafe", method="POST", host="mainland", path="/v3/unsafe")

SYSTEM_ERROR = {"code": "SYSTEM_ERROR", "message": "系统错误"}
RATE_LIMITED = {"code": "FREQUENCY_LIMITED", "message": "too fast"}


def signature_params(fake: FakeWeChat, index: int) -> dict[str, str]:
    return parse_authorization(fake.seen[index].headers["Authorization"])[1]


def assert_signed_by(credentials: MerchantCredentials, fake: FakeWeChat, index: int) -> None:
    seen = fake.seen[index]
    params = signature_params(fake, index)
    message = build_request_message(
        seen.method, seen.path, params["timestamp"], params["nonce_str"], seen.body
    )
    assert params["mchid"] == credentials.mchid
    assert params["serial_no"] == credentials.serial_no
    assert verify_signature(credentials.private_key.public_key(), message, params["signature"])


async def test_retry_500_429_200_same_body_and_key_three_signatures(
    client: WxPayClient, fake: FakeWeChat, credentials: MerchantCredentials
) -> None:
    fake.answers.extend(
        [
            Answer(500, SYSTEM_ERROR),
            Answer(429, RATE_LIMITED),
            Answer(200, {"sub_mchid": "123", "verification_status": "Approved"}),
        ]
    )
    body = json.dumps({"name": "商户"}, ensure_ascii=False).encode()
    raw = await client.send(CREATE, body=body, idempotency_key="abc123")
    assert raw.status == 200
    assert json.loads(raw.body)["sub_mchid"] == "123"
    assert len(fake.seen) == 3
    assert {s.body for s in fake.seen} == {body}
    assert {s.headers["Idempotency-Key"] for s in fake.seen} == {"abc123"}
    nonces = {signature_params(fake, i)["nonce_str"] for i in range(3)}
    signatures = {signature_params(fake, i)["signature"] for i in range(3)}
    assert len(nonces) == 3
    assert len(signatures) == 3
    for i in range(3):
        assert_signed_by(credentials, fake, i)


async def test_param_error_is_not_retried(client: WxPayClient, fake: FakeWeChat) -> None:
    fake.answers.append(
        Answer(400, {"code": "PARAM_ERROR", "message": "bad", "detail": {"field": "#/name"}})
    )
    with pytest.raises(BadRequestError) as info:
        await client.send(CREATE, body=b"{}", idempotency_key="k1")
    assert len(fake.seen) == 1
    err = info.value
    assert (err.status, err.code, err.detail) == (400, "PARAM_ERROR", {"field": "#/name"})
    assert err.verified is True
    assert err.request_id
    assert err.request_id in str(err)


async def test_exhausted_attempts_raise_the_last_answer(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    fake.answers.extend([Answer(500, SYSTEM_ERROR)] * 3 + [Answer(429, RATE_LIMITED)])
    with pytest.raises(RateLimitedError) as info:
        await client.send(GET, path_params={"sub_mchid": "1"})
    assert len(fake.seen) == 4
    assert info.value.code == "FREQUENCY_LIMITED"


async def test_unsafe_post_is_not_retried_on_500(client: WxPayClient, fake: FakeWeChat) -> None:
    fake.answers.append(Answer(500, SYSTEM_ERROR))
    with pytest.raises(ServerError):
        await client.send(UNSAFE_POST, body=b"{}")
    assert len(fake.seen) == 1


async def test_sign_error_401_is_typed_and_not_retried(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    fake.answers.append(Answer(401, {"code": "SIGN_ERROR", "message": "签名错误"}))
    with pytest.raises(SignatureRejectedError):
        await client.send(GET, path_params={"sub_mchid": "1"})
    assert len(fake.seen) == 1


async def test_unsigned_error_answer_is_flagged_unverified(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    fake.answers.append(Answer(400, {"code": "INVALID_REQUEST", "message": "x"}, signed=False))
    with pytest.raises(BadRequestError) as info:
        await client.send(GET, path_params={"sub_mchid": "1"})
    assert info.value.verified is False
    assert "not signature-verified" in str(info.value)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(200, {"ok": 1}, twist="tamper"), SignatureVerificationError),
        (Answer(200, {"ok": 1}, twist="stale"), TimestampOutOfWindowError),
        (Answer(200, {"ok": 1}, twist="probe"), SignatureProbeError),
        (Answer(200, {"ok": 1}, signed=False), SignatureVerificationError),
        (Answer(204, b"", signed=False), SignatureVerificationError),
        (Answer(200, {"ok": 1}, twist="serial:PUB_KEY_ID_OTHER"), UnknownSerialError),
    ],
    ids=["tampered-body", "stale", "signtest-probe", "unsigned-200", "unsigned-204", "unknown-key"],
)
async def test_unverifiable_success_is_refused_and_not_retried(
    client: WxPayClient, fake: FakeWeChat, answer: Answer, error: type[Exception]
) -> None:
    fake.answers.append(answer)
    with pytest.raises(error):
        await client.send(GET, path_params={"sub_mchid": "1"})
    assert len(fake.seen) == 1


async def test_signed_204_is_accepted(client: WxPayClient, fake: FakeWeChat) -> None:
    fake.answers.append(Answer(204, b""))
    raw = await client.send(UNSAFE_POST, body=b"{}")
    assert (raw.status, raw.body) == (204, b"")


async def test_signature_window_is_configurable(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts.single(fake.url),
        signature_window=3600,
    ) as wide:
        fake.answers.append(Answer(200, {"ok": 1}, twist="stale"))
        raw = await wide.send(GET, path_params={"sub_mchid": "1"})
    assert raw.status == 200


async def test_path_and_query_are_signed_exactly_as_sent(
    client: WxPayClient, fake: FakeWeChat, credentials: MerchantCredentials
) -> None:
    endpoint = Endpoint(name="q", method="GET", host="mainland", path="/v3/x/{code}")
    await client.send(
        endpoint, path_params={"code": "a b/c|*"}, query={"service_id": "s&1", "sub_mchid": "中"}
    )
    seen = fake.seen[0]
    assert seen.path == "/v3/x/a%20b%2Fc%7C%2A?service_id=s%261&sub_mchid=%E4%B8%AD"
    assert_signed_by(credentials, fake, 0)


async def test_idempotency_key_is_required_and_checked(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    with pytest.raises(ValidationError, match="idempotency_key"):
        await client.send(CREATE, body=b"{}")
    with pytest.raises(ValidationError, match="letters and digits"):
        await client.send(CREATE, body=b"{}", idempotency_key="has-dash")
    assert fake.seen == []


async def test_dropped_connection_is_retried_with_a_fresh_signature(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    fake.answers.extend([Answer(twist="drop"), Answer(200, {"ok": 1})])
    raw = await client.send(CREATE, body=b'{"a":1}', idempotency_key="k2")
    assert raw.status == 200
    assert len(fake.seen) == 2
    assert signature_params(fake, 0)["nonce_str"] != signature_params(fake, 1)["nonce_str"]
    assert fake.seen[0].body == fake.seen[1].body


async def test_dropped_connection_on_unsafe_post_is_not_resent(
    client: WxPayClient, fake: FakeWeChat
) -> None:
    fake.answers.append(Answer(twist="drop"))
    with pytest.raises(TransportError):
        await client.send(UNSAFE_POST, body=b"{}")
    assert len(fake.seen) == 1


async def test_keepalive_reuse_never_repeats_a_nonce(client: WxPayClient, fake: FakeWeChat) -> None:
    # Several GETs over one pooled connection, one of them dropped mid-way: aiohttp's own
    # "retry once on a dropped keep-alive connection" would resend identical headers.
    fake.answers.extend([Answer(), Answer(), Answer(twist="drop"), Answer(), Answer()])
    for _ in range(4):
        await client.send(GET, path_params={"sub_mchid": "1"})
    nonces = [signature_params(fake, i)["nonce_str"] for i in range(len(fake.seen))]
    assert len(nonces) == len(set(nonces)) == 5


async def test_connection_refused_raises_transport_error(credentials: MerchantCredentials) -> None:
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, FakeWeChat(b"k" * 32).public_key_pem),
        hosts=Hosts.single("http://127.0.0.1:9"),
        retry=RetryPolicy(attempts=2, sleep=False),
    ) as c:
        with pytest.raises(TransportError, match="2 attempt"):
            await c.send(GET, path_params={"sub_mchid": "1"})


MAINLAND_GET = Endpoint(name="mainland.get", method="GET", host="mainland", path="/v3/x/{id}")
REFUSED = "http://127.0.0.1:9"  # nothing listens: the connection is refused, nothing is sent


def failover_client(
    credentials: MerchantCredentials, fake: FakeWeChat, backup: str, attempts: int
) -> WxPayClient:
    """A client whose mainland host refuses connections, failing over to ``backup``."""
    return WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts(mainland=REFUSED, mainland_backup=backup, failover=True),
        retry=RetryPolicy(attempts=attempts, sleep=False),
    )


async def test_failover_to_backup_host_on_connection_failure(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    async with failover_client(credentials, fake, fake.url, attempts=1) as c:
        raw = await c.send(UNSAFE_POST, body=b"{}")
    assert raw.status == 200
    assert len(fake.seen) == 1


async def test_the_backup_host_is_tried_once_after_a_failover(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    """The primary used up its attempts (connection refused); the backup answers SYSTEM_ERROR:
    spec Part C ("retry once on the configured backup"), so that answer is the call's."""
    fake.answers.append(Answer(500, SYSTEM_ERROR))
    async with failover_client(credentials, fake, fake.url, attempts=2) as c:
        with pytest.raises(ServerError, match="SYSTEM_ERROR"):
            await c.send(MAINLAND_GET, path_params={"id": "1"})
    assert len(fake.seen) == 1


async def test_a_failed_failover_reports_every_attempt_of_the_call(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    async with failover_client(credentials, fake, "http://127.0.0.1:7", attempts=2) as c:
        with pytest.raises(TransportError, match="after 3 attempt"):  # two, then the backup
            await c.send(MAINLAND_GET, path_params={"id": "1"})


async def test_no_failover_for_the_global_host(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    hosts = Hosts(global_="http://127.0.0.1:9", mainland_backup=fake.url, failover=True)
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=hosts,
        retry=RetryPolicy(attempts=1, sleep=False),
    ) as c:
        with pytest.raises(TransportError):
            await c.send(GET, path_params={"sub_mchid": "1"})
    assert fake.seen == []


async def test_retry_deadline_stops_early(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.default = Answer(500, SYSTEM_ERROR)
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts.single(fake.url),
        retry=RetryPolicy(attempts=10, wait_initial=0.05, wait_jitter=0, deadline=0.12),
    ) as c:
        with pytest.raises(ServerError):
            await c.send(GET, path_params={"sub_mchid": "1"})
    assert 2 <= len(fake.seen) < 10


async def test_retry_after_header_is_honoured(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    fake.answers.extend([Answer(429, RATE_LIMITED, headers={"Retry-After": "0.05"}), Answer()])
    async with WxPayClient(
        credentials,
        trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
        hosts=Hosts.single(fake.url),
        retry=RetryPolicy(attempts=2, wait_initial=5, wait_max=1),
    ) as c:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await c.send(GET, path_params={"sub_mchid": "1"})
        assert 0.04 <= loop.time() - started < 0.9


async def test_closed_client_refuses_to_send(client: WxPayClient) -> None:
    await client.aclose()
    with pytest.raises(Exception, match="closed"):
        await client.send(GET, path_params={"sub_mchid": "1"})


async def test_no_secret_in_logs_at_debug(
    client: WxPayClient,
    fake: FakeWeChat,
    credentials: MerchantCredentials,
    rsa_key_pem: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.answers.extend(
        [
            Answer(500, SYSTEM_ERROR),
            Answer(200, {"ok": 1}),
            Answer(400, {"code": "X", "message": "m"}),
        ]
    )
    await client.send(CREATE, body=b'{"contact":"secret"}', idempotency_key="k3")
    with pytest.raises(BadRequestError) as info:
        await client.send(CREATE, body=b"{}", idempotency_key="k4")
    text = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    text += repr(client) + repr(credentials) + str(info.value)
    assert caplog.records, "expected the retry to be logged"
    authorizations = [s.headers["Authorization"] for s in fake.seen]
    forbidden = [
        credentials.apiv3_key.decode(),
        rsa_key_pem.decode().splitlines()[1],
        *authorizations,
        *(parse_authorization(a)[1]["signature"] for a in authorizations),
    ]
    for secret in forbidden:
        assert secret not in text


async def test_signing_in_an_executor_gives_valid_fresh_signatures(
    credentials: MerchantCredentials, fake: FakeWeChat
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fake.answers.extend([Answer(500, SYSTEM_ERROR), Answer(), Answer()])
    with ThreadPoolExecutor(max_workers=1) as pool:
        async with WxPayClient(
            credentials,
            trust=PublicKeyTrust(PUBLIC_KEY_ID, fake.public_key_pem),
            hosts=Hosts.single(fake.url),
            retry=RetryPolicy(sleep=False),
            sign_executor=pool,
        ) as c:
            await asyncio.gather(
                c.send(CREATE, body=b'{"a":1}', idempotency_key="k9"),
                c.send(GET, path_params={"sub_mchid": "2"}),
            )
    assert len(fake.seen) == 3
    for i in range(3):
        assert_signed_by(credentials, fake, i)
    assert len({signature_params(fake, i)["nonce_str"] for i in range(3)}) == 3
