"""The floor: a hand-written aiohttp loop that signs, sends and verifies, and nothing else.

No validation, no models, no retries, no error mapping: ``cryptography`` RSA-SHA256 signing of
the v3 request message, one ``aiohttp`` GET with the Authorization header, and an RSA verify
of the answer's ``Wechatpay-Signature`` over ``timestamp\\nnonce\\nbody\\n``. Whatever a
library spends beyond this is its own overhead.

``sign_threads=n`` signs in a pool of ``n`` threads instead of on the event loop
(``cryptography`` releases the GIL while signing), to measure whether that helps here.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ._srv_identity import Identity

__all__ = ["floor_client"]

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


@asynccontextmanager
async def floor_client(
    identity: Identity, base_url: str, path: str, *, sign_threads: int = 0
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Yield a coroutine function doing one signed, verified GET of ``path``."""
    key, public, prefix = identity.floor_keys()
    url = base_url + path
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=sign_threads) if sign_threads else None

    def authorization() -> str:
        timestamp = int(time.time())
        nonce = os.urandom(16).hex()
        message = f"GET\n{path}\n{timestamp}\n{nonce}\n\n".encode()
        signature = base64.b64encode(key.sign(message, _PKCS1, _SHA256)).decode()
        return f'{prefix}{nonce}",timestamp="{timestamp}",signature="{signature}"'

    async def call() -> None:
        if pool is None:
            header = authorization()
        else:
            header = await loop.run_in_executor(pool, authorization)
        async with session.get(url, headers={"Authorization": header}) as response:
            body = await response.read()
            h = response.headers
            message = f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n".encode()
            public.verify(
                base64.b64decode(h["Wechatpay-Signature"]), message + body + b"\n", _PKCS1, _SHA256
            )
            if response.status != 200:
                raise RuntimeError(f"floor: HTTP {response.status}")

    connector = aiohttp.TCPConnector(limit=100, limit_per_host=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            yield call
        finally:
            if pool is not None:
                pool.shutdown()
