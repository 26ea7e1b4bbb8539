"""The floor: a hand-written aiohttp loop that signs, sends and verifies, and nothing else.

No validation, no models, no retries, no error mapping: ``cryptography`` RSA-SHA256 signing of
the v3 request message, one ``aiohttp`` GET with the Authorization header, and an RSA verify
of the answer's ``Wechatpay-Signature`` over ``timestamp\\nnonce\\nbody\\n``. Whatever a
library spends beyond this is its own overhead.

Every floor verifies with :func:`floor_verify`, the cheapest correct check ``cryptography``
offers (the one ``wxpay_async`` uses too), so that no floor pays for a slower primitive than
the library it is compared with.

``sign_threads=n`` signs in a pool of ``n`` threads instead of on the event loop
(``cryptography`` releases the GIL while signing), to measure whether that helps here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ._srv_identity import Identity

__all__ = ["floor_client", "floor_verify"]

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
#: DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2, note 1).
_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def floor_verify(public: RSAPublicKey, signature: bytes, message: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is an RSASSA-PKCS1-v1_5 SHA-256 signature
    of ``message``: recover the padded digest and compare (RFC 8017 §8.2.2).

    ``public.verify`` gives the same answers but sets up an OpenSSL digest context per call,
    ~15 % more CPU; the length check keeps a signature with a dropped leading zero out.
    """
    if len(signature) != (public.key_size + 7) // 8:
        raise InvalidSignature
    recovered = public.recover_data_from_signature(signature, _PKCS1, None)
    if recovered != _DIGEST_INFO + hashlib.sha256(message).digest():
        raise InvalidSignature


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
            floor_verify(public, base64.b64decode(h["Wechatpay-Signature"]), message + body + b"\n")
            if response.status != 200:
                raise RuntimeError(f"floor: HTTP {response.status}")

    connector = aiohttp.TCPConnector(limit=100, limit_per_host=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            yield call
        finally:
            if pool is not None:
                pool.shutdown()
