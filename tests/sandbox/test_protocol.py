"""The sandbox checks requests and signs answers as spec §B1-§B3 say, independently of our client.

The signer and verifier here are written from the spec with ``cryptography`` directly, so a
bug shared by the client and the sandbox cannot hide.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yarl
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import vector_file
from tests.sandbox.helpers import PAYSCORE, payscore_request
from wxpay_async.sandbox import DEFAULT_SP_APPID, DEFAULT_SUB_MCHID, Sandbox
from wxpay_async.sandbox._protocol import NonceCache

_TV1 = serialization.load_pem_private_key(vector_file("tv1_private_key.pem"), password=None)
assert isinstance(_TV1, rsa.RSAPrivateKey)
TV1_KEY: rsa.RSAPrivateKey = _TV1  # parsed once: RSA key validation is slow


def spec_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(
        key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()


def authorization(
    sb: Sandbox,
    key: rsa.RSAPrivateKey,
    method: str,
    url: str,
    body: str = "",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    mchid: str | None = None,
    serial: str | None = None,
) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    signature = spec_sign(key, f"{method}\n{url}\n{ts}\n{nonce}\n{body}\n")
    # Parameters deliberately in a different order from the official SDKs.
    return (
        f'WECHATPAY2-SHA256-RSA2048 signature="{signature}",timestamp="{ts}",'
        f'serial_no="{serial or sb.identity.merchant_serial}",nonce_str="{nonce}",'
        f'mchid="{mchid or sb.identity.mchid}"'
    )


def spec_verify(sb: Sandbox, headers: Any, body: bytes) -> bool:
    """§B3 with the key the sandbox names in Wechatpay-Serial."""
    serial = headers["Wechatpay-Serial"]
    identity = sb.identity
    if serial == identity.pubkey_id:
        public = identity.pubkey_key.public_key()
    else:
        (cert,) = [c for c in identity.certificates if c.serial_no == serial]
        public = cert.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
    try:
        public.verify(
            base64.b64decode(headers["Wechatpay-Signature"]),
            message + body + b"\n",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except Exception:
        return False
    return True


@pytest_asyncio.fixture(params=["public_key", "certificate"])
async def tv1(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    async with Sandbox.start(key_mode=request.param, merchant_private_key=TV1_KEY) as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as session:
        yield session


def tv1_key() -> rsa.RSAPrivateKey:
    return TV1_KEY


async def post(
    http: aiohttp.ClientSession, sb: Sandbox, path: str, body: str, auth: str
) -> tuple[int, Any, bytes]:
    async with http.post(
        yarl.URL(sb.url + path, encoded=True),
        data=body.encode(),
        headers={"Authorization": auth, "Content-Type": "application/json"},
    ) as response:
        raw = await response.read()
        return response.status, response.headers, raw


async def test_independent_signer_is_accepted_and_answer_verifies(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(payscore_request("TV1_CODE"), separators=(",", ":"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body)
    status, headers, raw = await post(http, tv1, PAYSCORE, body, auth)
    assert status == 200, raw
    assert "apply_permissions_token" in json.loads(raw)
    assert spec_verify(tv1, headers, raw)
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert headers["Request-ID"]


async def test_signature_over_another_body_is_refused(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(payscore_request("SWAP"), separators=(",", ":"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body.replace("SWAP", "SWAQ"))
    status, headers, raw = await post(http, tv1, PAYSCORE, body, auth)
    assert status == 401
    assert json.loads(raw)["code"] == "SIGN_ERROR"
    assert spec_verify(tv1, headers, raw)  # errors are signed too
    assert tv1.state.payscore == {}


async def test_signature_over_a_re_encoded_query_is_refused(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    path = f"/hk/v3/merchants/{DEFAULT_SUB_MCHID}"
    sent = f"{path}?sp_appid={DEFAULT_SP_APPID}&sp_mchid={tv1.identity.mchid}"
    # Same query, percent-encoded differently: decodes equal, signs different.
    signed = sent.replace("sp_appid=wxd", "sp_appid=%77xd")
    for canonical, expected in ((signed, 401), (sent, 200)):
        auth = authorization(tv1, tv1_key(), "GET", canonical)
        async with http.get(
            yarl.URL(tv1.url + sent, encoded=True), headers={"Authorization": auth}
        ) as response:
            assert response.status == expected, await response.text()


async def test_stale_timestamp_is_refused(tv1: Sandbox, http: aiohttp.ClientSession) -> None:
    body = json.dumps(payscore_request("STALE"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body, timestamp=int(time.time()) - 301)
    status, _, raw = await post(http, tv1, PAYSCORE, body, auth)
    assert (status, json.loads(raw)["code"]) == (401, "SIGN_ERROR")
    assert "时间戳" in json.loads(raw)["message"]


async def test_reused_nonce_is_refused(tv1: Sandbox, http: aiohttp.ClientSession) -> None:
    nonce = "N" * 32
    first = json.dumps(payscore_request("NONCE1"))
    second = json.dumps(payscore_request("NONCE2"))
    auth1 = authorization(tv1, tv1_key(), "POST", PAYSCORE, first, nonce=nonce)
    auth2 = authorization(tv1, tv1_key(), "POST", PAYSCORE, second, nonce=nonce)
    assert (await post(http, tv1, PAYSCORE, first, auth1))[0] == 200
    status, _, raw = await post(http, tv1, PAYSCORE, second, auth2)
    assert status == 401
    assert "nonce" in json.loads(raw)["message"]
    assert list(tv1.state.payscore) == ["NONCE1"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mchid": "1230000109"}, "商户号"),
        ({"serial": "0123456789ABCDEF"}, "序列号"),
    ],
)
async def test_wrong_identity_is_refused(
    tv1: Sandbox, http: aiohttp.ClientSession, changes: dict[str, str], message: str
) -> None:
    body = json.dumps(payscore_request("WHO"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body, **changes)
    status, _, raw = await post(http, tv1, PAYSCORE, body, auth)
    assert status == 401
    assert message in json.loads(raw)["message"]


async def test_a_different_private_key_is_refused(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = json.dumps(payscore_request("OTHERKEY"))
    status, _, raw = await post(
        http, tv1, PAYSCORE, body, authorization(tv1, other, "POST", PAYSCORE, body)
    )
    assert (status, json.loads(raw)["code"]) == (401, "SIGN_ERROR")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "WECHATPAY2-SHA256-RSA2048",
        'WECHATPAY2-SM2-WITH-SM3 mchid="1900000109",nonce_str="a",timestamp="1",'
        'serial_no="a",signature="a"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="a"',
        'WECHATPAY2-SHA256-RSA2048 mchid=1900000109,nonce_str="a"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1900000109" nonce_str="a"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="1900000109",nonce_str="a",timestamp="1",'
        'serial_no="a",signature="a"',
    ],
)
async def test_malformed_authorization_is_sign_error(
    tv1: Sandbox, http: aiohttp.ClientSession, header: str
) -> None:
    status, _, raw = await post(http, tv1, PAYSCORE, "{}", header)
    assert (status, json.loads(raw)["code"]) == (401, "SIGN_ERROR")


@pytest.mark.parametrize("skip", ["User-Agent", "Accept"])
async def test_accept_and_user_agent_are_required(tv1: Sandbox, skip: str) -> None:
    body = json.dumps(payscore_request("HEADERS"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    if skip == "User-Agent":
        headers["Accept"] = "application/json"
    async with (
        aiohttp.ClientSession(skip_auto_headers=[skip]) as session,
        session.post(yarl.URL(tv1.url + PAYSCORE, encoded=True), data=body, headers=headers) as r,
    ):
        assert r.status == 400
        assert await r.json() == {
            "code": "INVALID_REQUEST",
            "message": "Http头缺少Accept或User-Agent",
        }


async def test_terminate_answers_204_signed_over_an_empty_body(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(payscore_request("T204"))
    await post(http, tv1, PAYSCORE, body, authorization(tv1, tv1_key(), "POST", PAYSCORE, body))
    await tv1.accept_payscore_authorization("T204")
    path = f"{PAYSCORE}/authorization-code/T204/terminate"
    end = json.dumps({"service_id": "500001", "sub_mchid": DEFAULT_SUB_MCHID, "reason": "done"})
    status, headers, raw = await post(
        http, tv1, path, end, authorization(tv1, tv1_key(), "POST", path, end)
    )
    assert (status, raw) == (204, b"")
    assert spec_verify(tv1, headers, b"")


async def test_request_ids_are_unique_and_unknown_routes_answer_signed_404(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    ids = set()
    for _ in range(3):
        path = "/v3/no/such/api"
        auth = authorization(tv1, tv1_key(), "GET", path)
        async with http.get(tv1.url + path, headers={"Authorization": auth}) as response:
            raw = await response.read()
            assert response.status == 404
            assert spec_verify(tv1, response.headers, raw)
            ids.add(response.headers["Request-ID"])
    assert len(ids) == 3


async def test_recorded_requests_redact_the_authorization_header(
    tv1: Sandbox, http: aiohttp.ClientSession
) -> None:
    body = json.dumps(payscore_request("REC"))
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body)
    await post(http, tv1, PAYSCORE, body, auth)
    (record,) = tv1.requests
    assert record.headers["Authorization"] == "<redacted>"
    assert record.body == body.encode()
    assert (record.method, record.path, record.status) == ("POST", PAYSCORE, 200)
    assert auth not in repr(tv1.requests)


async def test_verification_can_be_switched_off(http: aiohttp.ClientSession) -> None:
    async with Sandbox.start(verify_requests=False) as sb:
        body = json.dumps(payscore_request("NOVERIFY"))
        status, _, _ = await post(http, sb, PAYSCORE, body, "anything")
        assert status == 200


def test_nonces_are_kept_while_a_replay_could_pass_the_timestamp_check() -> None:
    # A request stamped a full window ahead stays timestamp-valid until two windows after it
    # arrived, so its nonce must be refused that long (and may be forgotten afterwards).
    nonces = NonceCache(window=300)
    assert nonces.add("N1", now=1000)
    assert not nonces.add("N1", now=1000 + 301)
    assert not nonces.add("N1", now=1000 + 600)
    assert nonces.add("N2", now=1000 + 601)  # forgetting N1 here is safe
    assert nonces.add("N1", now=1000 + 601)


@pytest.mark.parametrize("form", ["+{}", " {}", "0{}", "{}_0"])
async def test_timestamp_must_be_plain_digits_and_is_signed_as_sent(
    tv1: Sandbox, http: aiohttp.ClientSession, form: str
) -> None:
    now = int(time.time())
    sent = form.format(now if "_" not in form else now // 10)
    body = json.dumps(payscore_request("STAMP"))
    # Signed over the normalised number, sent in another spelling that int() would accept.
    auth = authorization(tv1, tv1_key(), "POST", PAYSCORE, body, timestamp=int(sent.strip()))
    auth = auth.replace(f'timestamp="{int(sent.strip())}"', f'timestamp="{sent}"')
    status, _, raw = await post(http, tv1, PAYSCORE, body, auth)
    assert (status, json.loads(raw)["code"]) == (401, "SIGN_ERROR")
    assert tv1.state.payscore == {}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(payscore_request("UTF16")).encode("utf-16"),
        json.dumps(payscore_request("NAN"))[:-1].encode() + b',"x":NaN}',
    ],
    ids=["utf-16", "NaN"],
)
async def test_bodies_that_are_not_strict_utf8_json_are_param_errors(
    tv1: Sandbox, http: aiohttp.ClientSession, body: bytes
) -> None:
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    message = f"POST\n{PAYSCORE}\n{ts}\n{nonce}\n".encode() + body + b"\n"
    signature = base64.b64encode(TV1_KEY.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    auth = (
        f'WECHATPAY2-SHA256-RSA2048 mchid="{tv1.identity.mchid}",nonce_str="{nonce}",'
        f'timestamp="{ts}",serial_no="{tv1.identity.merchant_serial}",'
        f'signature="{signature.decode()}"'
    )
    async with http.post(
        yarl.URL(tv1.url + PAYSCORE, encoded=True),
        data=body,
        headers={"Authorization": auth, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "PARAM_ERROR"
    assert tv1.state.payscore == {}
