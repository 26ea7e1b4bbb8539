"""The minimal signed-answer HTTP/1.1 server every benchmark runs against, in its own process.

It answers every request whose path starts with the configured prefix (``GET`` or ``POST``;
bodies are read and ignored) with one fixed JSON body and the ``Wechatpay-*`` headers a real
WeChat Pay answer carries, ``latency`` seconds later (a timer, no CPU). The RSA signature is
made at most once per second (same timestamp and nonce for every answer in that second):
signing each answer costs ~1 ms of server CPU and, on a 2-core machine, would measure the
server instead of the clients. Every client still verifies every answer with a full RSA
verify. Request signatures are *not* checked and request bodies are not decrypted (the
sandbox does both; here they would only add server CPU).

It is raw ``asyncio`` (a protocol with just enough HTTP/1.1 for keep-alive clients) rather
than ``aiohttp.web``: the batch benchmark's server on ``aiohttp.web`` spent ~170 µs of CPU per
answer, this one ~40-90 µs, and on two cores every microsecond it spends is taken from the
client being measured.

``GET /_stats`` answers ``{"requests": n, "cpu_s": seconds, "signatures": n}`` (unsigned) so
a benchmark can show the server was not the bottleneck.

``signed_server(...)`` starts it as a :class:`ChildServer`; ``python -m benchmarks._servers``
reads its configuration as one JSON line on stdin and prints ``listening http://...`` once
bound, then serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["ChildServer", "signed_server"]

_SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_URL = re.compile(r"(https?://[0-9A-Za-z.\-\[\]:]+)")


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
    """Keep-alive HTTP/1.1 with just enough parsing for small requests.

    Answers leave in request order: each waits in ``_due`` until ``latency`` has passed since
    its request arrived, and one timer at a time serves the head of that queue.
    """

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._due: collections.deque[tuple[float, bytes, bool]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
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
            close = b"\r\nconnection: close" in head
            delay = self._server.latency if target.startswith(self._server.prefix) else 0.0
            if delay <= 0 and not self._due:
                self._answer(target, close)
            else:  # behind a waiting answer, even an instant one waits its turn
                self._due.append((asyncio.get_running_loop().time() + delay, target, close))
                if self._timer is None:
                    self._schedule()

    def _schedule(self) -> None:
        # call_at on the loop's clock: a due time already past fires on the next turn.
        self._timer = asyncio.get_running_loop().call_at(self._due[0][0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        _, target, close = self._due.popleft()
        self._answer(target, close)
        if self._due and self._transport is not None:
            self._schedule()

    def _answer(self, target: bytes, close: bool) -> None:
        if self._transport is None:
            return
        self._transport.write(self._server.respond(target))
        if close:
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Server:
    def __init__(self, signer: _Signer, prefix: str, latency: float) -> None:
        self._signer = signer
        self.prefix = prefix.lower().encode()
        self.latency = latency
        self.requests = 0

    def respond(self, target: bytes) -> bytes:
        if target.startswith(self.prefix):
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
    signer = _Signer(key, config["key_id"], config["body"].encode())
    server = _Server(signer, config["path_prefix"], float(config.get("latency") or 0.0))
    loop = asyncio.get_running_loop()
    # A deep backlog: a batch opens a few hundred connections at once.
    listener = await loop.create_server(
        lambda: _Connection(server), "127.0.0.1", 0, backlog=2048, reuse_address=True
    )
    port = listener.sockets[0].getsockname()[1]
    print(f"listening http://127.0.0.1:{port}", flush=True)
    # Serve until stdin closes: the benchmark ends us, or dies and its end of the pipe closes.
    await loop.run_in_executor(None, sys.stdin.read)
    listener.close()


def main() -> None:
    config = json.loads(sys.stdin.readline())
    cpu = config.get("cpu")
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    asyncio.run(_serve(config))


class ChildServer:
    """Run ``argv`` as a child process; ``url`` is the first URL it prints, while inside ``with``.

    ``stdin`` (if given) is written to the child first; its stdin stays open until the child is
    stopped, so a child may take end-of-file as "the benchmark is gone".
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self._argv = list(argv)
        self._stdin = stdin
        self._cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=self._cwd,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        if self._stdin is not None:
            self._proc.stdin.write(self._stdin)
            self._proc.stdin.flush()
        # Blocks until the child prints its URL or exits (end of file: it failed to start).
        for line in self._proc.stdout:
            if found := _URL.search(line):
                self.url = found.group(1).rstrip("/")
                return self
        self._stop()
        raise RuntimeError(f"server did not start: {' '.join(self._argv[:4])} ...")

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
        if self._proc.stdin is not None:
            self._proc.stdin.close()
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


def signed_server(
    *,
    private_key_pem: str,
    key_id: str,
    body: bytes,
    path_prefix: str,
    latency: float = 0.0,
    cpu: int | None = None,
) -> ChildServer:
    """This module's server answering ``body`` under ``path_prefix``, as a :class:`ChildServer`.

    ``cpu``: pin the server to that CPU (Linux), so that it does not share the client's.
    """
    config = {
        "private_key_pem": private_key_pem,
        "key_id": key_id,
        "body": body.decode(),
        "path_prefix": path_prefix,
        "latency": latency,
        "cpu": cpu,
    }
    return ChildServer(
        [sys.executable, "-m", "benchmarks._servers"],
        stdin=json.dumps(config) + "\n",
        cwd=Path(__file__).resolve().parents[1],
    )


if __name__ == "__main__":
    main()
