"""A minimal signed-response HTTP/1.1 server for the request benchmarks, run in its own process.

It answers every ``GET`` whose path starts with the configured prefix with one fixed JSON body
and the ``Wechatpay-*`` headers a real WeChat Pay answer carries. The RSA signature is made at
most once per second (same timestamp and nonce for every answer in that second): signing each
answer costs ~1 ms of server CPU and, on a 2-core machine, would measure the server instead of
the clients. Every client still verifies every answer with a full RSA verify. Request signatures
are *not* checked (the sandbox does that; here it would only add server CPU).

``GET /_stats`` answers ``{"requests": n, "cpu_s": seconds}`` (unsigned) so a benchmark can show
the server was not the bottleneck.

Started by :class:`ServerProcess`; ``python -m benchmarks._servers`` reads its configuration as
JSON on stdin and prints ``listening <port>`` once bound.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["ServerProcess"]

_SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


class _Signer:
    """The answer bytes, re-signed when the wall-clock second changes."""

    def __init__(self, key: RSAPrivateKey, key_id: str, body: bytes) -> None:
        self._key = key
        self._key_id = key_id
        self._body = body
        self._second = -1
        self._answer = b""
        self.signatures = 0

    def answer(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._answer = self._build(second)
        return self._answer

    def _build(self, second: int) -> bytes:
        nonce = os.urandom(16).hex()
        message = f"{second}\n{nonce}\n".encode() + self._body + b"\n"
        signature = self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        self.signatures += 1
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(self._body)}\r\n"
            f"Request-ID: bench-{second}-{nonce[:8]}\r\n"
            f"Wechatpay-Timestamp: {second}\r\n"
            f"Wechatpay-Nonce: {nonce}\r\n"
            f"Wechatpay-Signature: {base64.b64encode(signature).decode()}\r\n"
            f"Wechatpay-Serial: {self._key_id}\r\n"
            f"Wechatpay-Signature-Type: {_SIGNATURE_TYPE}\r\n"
            "\r\n"
        )
        return head.encode("latin-1") + self._body


def _plain(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """Keep-alive HTTP/1.1 with just enough parsing for GETs and small bodies."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else None])
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            self._transport.write(self._server.respond(target))
            if b"\r\nconnection: close" in head:
                self._transport.close()
                self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class _Server:
    def __init__(self, signer: _Signer, prefix: str) -> None:
        self._signer = signer
        self._prefix = prefix.lower().encode()
        self.requests = 0

    def respond(self, target: bytes) -> bytes:
        if target.startswith(self._prefix):
            self.requests += 1
            return self._signer.answer()
        if target == b"/_stats":
            stats = {
                "requests": self.requests,
                "cpu_s": time.process_time(),
                "signatures": self._signer.signatures,
            }
            return _plain("200 OK", json.dumps(stats).encode())
        return _plain("404 Not Found", b'{"code":"NOT_FOUND","message":"no such route"}')


async def _serve(config: dict[str, Any]) -> None:
    key = serialization.load_pem_private_key(config["private_key_pem"].encode(), password=None)
    assert isinstance(key, RSAPrivateKey)
    server = _Server(_Signer(key, config["key_id"], config["body"].encode()), config["path_prefix"])
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: _Connection(server), "127.0.0.1", 0, backlog=1024, reuse_address=True
    )
    port = listener.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    # Serve until stdin closes: the benchmark ends us, or dies and its end of the pipe closes.
    await loop.run_in_executor(None, sys.stdin.read)
    listener.close()


def main() -> None:
    config = json.loads(sys.stdin.readline())
    cpu = config.get("cpu")
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    asyncio.run(_serve(config))


class ServerProcess:
    """Start the server in a child process; ``url`` is its base URL while inside ``with``."""

    def __init__(
        self,
        *,
        private_key_pem: str,
        key_id: str,
        body: bytes,
        path_prefix: str,
        cpu: int | None = None,
    ) -> None:
        self._config = {
            "private_key_pem": private_key_pem,
            "key_id": key_id,
            "body": body.decode(),
            "path_prefix": path_prefix,
            "cpu": cpu,
        }
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._servers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(self._config) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self._stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{line[1]}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        self._proc = None


if __name__ == "__main__":
    main()
