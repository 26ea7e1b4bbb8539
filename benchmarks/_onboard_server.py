"""A minimal HK onboarding server for the batch benchmark, and a helper to run servers as children.

``POST /hk/v3/merchants`` waits ``latency`` seconds (``asyncio.sleep``, no CPU) and answers
``{"sub_mchid": ..., "verification_status": "Under Review"}`` with the ``Wechatpay-*`` headers
of a public-key-mode answer (``Wechatpay-Serial: PUB_KEY_ID_...``). The RSA signature is made
once per wall-clock second and reused (same timestamp, nonce and signature) for every answer in
that second: the full sandbox spends ~2.5 ms of CPU per onboarding (three RSA decryptions of
the contact fields and a signature), which on a 2-core machine would measure the sandbox rather
than the client. The client still RSA-verifies every answer. Requests are neither verified nor
decrypted, and every answer names the same ``sub_mchid``.

``GET /_stats`` answers ``{"requests": n, "cpu_s": seconds, "signatures": n}`` (unsigned), so a
benchmark can show the server was not the bottleneck.

``python -m benchmarks._onboard_server`` reads its configuration as one JSON line on stdin and
prints ``listening http://127.0.0.1:<port>`` once bound; :class:`ChildServer` does all that.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = ["ChildServer", "onboard_server"]

SUB_MCHID = "2000000001"
BODY = json.dumps({"sub_mchid": SUB_MCHID, "verification_status": "Under Review"}).encode()
_URL = re.compile(r"(https?://[0-9A-Za-z.\-\[\]:]+)")


class _Signer:
    """The ``Wechatpay-*`` headers for ``BODY``, re-signed when the wall-clock second changes."""

    def __init__(self, key: RSAPrivateKey, key_id: str) -> None:
        self._key = key
        self._key_id = key_id
        self._second = -1
        self._headers: dict[str, str] = {}
        self.signatures = 0

    def headers(self) -> Mapping[str, str]:
        second = int(time.time())
        if second != self._second:
            nonce = os.urandom(16).hex()
            message = f"{second}\n{nonce}\n".encode() + BODY + b"\n"
            signature = self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())
            self.signatures += 1
            self._second = second
            self._headers = {
                "Content-Type": "application/json",
                "Request-ID": f"bench-{second}-{nonce[:8]}",
                "Wechatpay-Timestamp": str(second),
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": base64.b64encode(signature).decode("ascii"),
                "Wechatpay-Serial": self._key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            }
        return self._headers


def _app(signer: _Signer, latency: float) -> web.Application:
    requests = 0

    async def create(_request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        if latency > 0:
            await asyncio.sleep(latency)
        return web.Response(body=BODY, headers=signer.headers())

    async def stats(_request: web.Request) -> web.Response:
        document = {
            "requests": requests,
            "cpu_s": time.process_time(),
            "signatures": signer.signatures,
        }
        return web.json_response(document)

    app = web.Application()
    app.router.add_post("/hk/v3/merchants", create)
    app.router.add_get("/_stats", stats)
    return app


async def _serve(config: dict[str, Any]) -> None:
    key = serialization.load_pem_private_key(config["private_key_pem"].encode(), password=None)
    assert isinstance(key, RSAPrivateKey)
    runner = web.AppRunner(
        _app(_Signer(key, config["key_id"]), float(config["latency"])), access_log=None
    )
    await runner.setup()
    # A deep backlog: a batch opens a few hundred connections at once.
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening http://127.0.0.1:{port}", flush=True)
    try:
        # Serve until stdin closes: the benchmark closed it, or died without terminating us.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()


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


def onboard_server(*, private_key_pem: str, key_id: str, latency: float) -> ChildServer:
    """The minimal onboarding server (this module) as a :class:`ChildServer`."""
    config = {"private_key_pem": private_key_pem, "key_id": key_id, "latency": latency}
    return ChildServer(
        [sys.executable, "-m", "benchmarks._onboard_server"],
        stdin=json.dumps(config) + "\n",
        cwd=Path(__file__).resolve().parents[1],
    )


def main() -> None:
    asyncio.run(_serve(json.loads(sys.stdin.readline())))


if __name__ == "__main__":
    main()
