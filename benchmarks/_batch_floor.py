"""The batch floor: a hand-written aiohttp loop doing one onboarding's unavoidable work.

Per job: RSA-encrypt the three contact fields (PKCS#1 v1.5, as ``hk_merchants.create`` does),
``json.dumps`` the application, sign the v3 request message, one ``aiohttp`` POST with the
Authorization, Wechatpay-Serial and Idempotency-Key headers, and an RSA verify of the answer
(:func:`floor_verify`).
No validation, no models, no journal, no retries, no error mapping, no result objects: what
any Python client on aiohttp must spend per onboarding, at the same concurrency as the batch.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ._floor import floor_verify
from ._srv_identity import Identity

__all__ = ["run_floor"]

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
PATH = "/hk/v3/merchants"


async def run_floor(
    identity: Identity,
    base_url: str,
    jobs: range,
    concurrency: int,
    application: Callable[[int, str], dict[str, Any]],
) -> tuple[float, float, float]:
    """Run the onboardings numbered ``jobs``; returns (wall s, process CPU s, loop-thread CPU s)."""
    key, public, prefix = identity.floor_keys()
    url = base_url + PATH
    counter = iter(jobs)

    def encrypt(value: str) -> str:
        return base64.b64encode(public.encrypt(value.encode(), _PKCS1)).decode()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        document = application(i, identity.mchid)
        contact = document["contact"]
        for name in ("name", "phone", "email"):
            contact[name] = encrypt(contact[name])
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp, nonce = int(time.time()), os.urandom(16).hex()
        message = f"POST\n{PATH}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64encode(key.sign(message, _PKCS1, _SHA256)).decode()
        headers = {
            "Authorization": f'{prefix}{nonce}",timestamp="{timestamp}",signature="{signature}"',
            "Content-Type": "application/json",
            "Wechatpay-Serial": identity.public_key_id,
            "Idempotency-Key": uuid.uuid4().hex,
        }
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            h = response.headers
            signed = f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n".encode()
            answer_signature = base64.b64decode(h["Wechatpay-Signature"])
            floor_verify(public, answer_signature, signed + answer + b"\n")
            if response.status != 200:
                raise RuntimeError(f"batch floor: HTTP {response.status}")

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            await one(session, i)

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu0, loop0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
        return wall, time.process_time() - cpu0, time.thread_time() - loop0
