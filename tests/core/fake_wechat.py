"""A scripted HTTP peer for the transport tests: answers from a queue, signs like WeChat Pay.

It is deliberately small; ``wxpay_async.sandbox`` is the faithful simulator. Here each test
states exactly which answers come back, in which order, and inspects what arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections import deque
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from wxpay_async import Endpoint
from wxpay_async.crypto import aead_encrypt, build_response_message, sign

PUBLIC_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"

#: Endpoints of no product, for tests of the client itself: a safe GET and an unsafe POST.
GET = Endpoint(name="get", method="GET", host="mainland", path="/v3/thing")
UNSAFE_POST = Endpoint(name="apply", method="POST", host="mainland", path="/v3/apply")


def make_certificate(
    key: rsa.RSAPrivateKey, *, days: int = 365, serial: int | None = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA test")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


@attrs.define
class Answer:
    status: int = 200
    body: Any = attrs.Factory(dict)  # dict → JSON; bytes → raw
    signed: bool = True
    #: "", "tamper", "stale", "probe", "serial:<x>", "drop" (close without answering)
    twist: str = ""
    headers: dict[str, str] = attrs.Factory(dict)


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeWeChat:
    """``answers`` is consumed per request; when empty, ``default`` answers."""

    def __init__(self, apiv3_key: bytes) -> None:
        self.apiv3_key = apiv3_key
        self.platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key_pem = (
            self.platform_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.certificate = make_certificate(self.platform_key)
        self.serial = format(self.certificate.serial_number, "X")
        self.mode = "public_key"
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self.seen: list[Seen] = []
        self.certificate_downloads = 0
        #: how many upcoming certificate downloads answer 500 SYSTEM_ERROR
        self.certificate_failures = 0
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def signing_serial(self) -> str:
        return PUBLIC_KEY_ID if self.mode == "public_key" else self.serial

    def rotate(self) -> None:
        """A new platform key/certificate (valid longer); answers are signed with it from now on."""
        self.platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = make_certificate(self.platform_key, days=730)
        self.serial = format(self.certificate.serial_number, "X")

    def certificate_list(self) -> dict[str, Any]:
        pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        nonce = secrets.token_hex(6)
        return {
            "data": [
                {
                    "serial_no": self.serial,
                    "effective_time": self.certificate.not_valid_before_utc.isoformat(),
                    "expire_time": self.certificate.not_valid_after_utc.isoformat(),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": aead_encrypt(self.apiv3_key, nonce, "certificate", pem),
                    },
                }
            ]
        }

    def signed_headers(self, body: bytes, *, twist: str = "") -> dict[str, str]:
        ts = str(int(time.time()) - (1000 if twist == "stale" else 0))
        nonce = secrets.token_hex(16)
        signature = sign(self.platform_key, build_response_message(ts, nonce, body))
        if twist == "probe":
            signature = "WECHATPAY/SIGNTEST/" + signature
        serial = twist.partition(":")[2] if twist.startswith("serial:") else self.signing_serial()
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial,
            "Request-ID": "req-" + secrets.token_hex(8),
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.raw_path, dict(request.headers), body))
        if request.path.endswith("/certificates") and self.certificate_failures:
            self.certificate_failures -= 1
            answer = Answer(500, {"code": "SYSTEM_ERROR", "message": "busy"})
        elif request.path.endswith("/certificates") and not self.answers:
            self.certificate_downloads += 1
            answer = Answer(body=self.certificate_list())
        else:
            answer = self.answers.popleft() if self.answers else self.default
        if answer.twist == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        if isinstance(answer.body, bytes):
            payload = answer.body
        elif answer.status == 204:
            payload = b""
        else:
            payload = json.dumps(answer.body).encode()
        headers = dict(answer.headers)
        if answer.signed:
            headers.update(self.signed_headers(payload, twist=answer.twist))
        if answer.twist == "tamper":
            payload = payload + b" "
        if payload:
            headers["Content-Type"] = "application/json"
        return web.Response(status=answer.status, body=payload or None, headers=headers)

    async def start(self) -> FakeWeChat:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
