"""Platform certificate download (spec A4.6): the list, AES-GCM-encrypted under the APIv3 key."""

from __future__ import annotations

import secrets
import string

from aiohttp import web

from ..crypto import AEAD_ALGORITHM, aead_encrypt
from ._clock import CHINA_TZ, rfc3339
from ._core import Core
from ._protocol import ApiFailure, json_bytes

__all__ = ["CERTIFICATE_PATHS", "certificate_list", "routes"]

CERTIFICATE_PATHS = ("/v3/certificates", "/v3/global/certificates", "/hk/v3/certificates")
_NONCE = string.ascii_letters + string.digits


def certificate_list(core: Core) -> bytes:
    """``{"data": [{serial_no, effective_time, expire_time, encrypt_certificate}]}``."""
    key = core.identity.apiv3_key.encode()
    entries = []
    for cert in core.identity.certificates:
        nonce = "".join(secrets.choice(_NONCE) for _ in range(12))
        entries.append(
            {
                "serial_no": cert.serial_no,
                "effective_time": rfc3339(cert.effective_time.astimezone(CHINA_TZ)),
                "expire_time": rfc3339(cert.expire_time.astimezone(CHINA_TZ)),
                "encrypt_certificate": {
                    "algorithm": AEAD_ALGORITHM,
                    "nonce": nonce,
                    "associated_data": "certificate",
                    "ciphertext": aead_encrypt(key, nonce, "certificate", cert.pem),
                },
            }
        )
    return json_bytes({"data": entries})


def routes(core: Core) -> list[web.RouteDef]:
    # Encrypting is cheap but not free; the list only changes on rotation.
    cache: dict[int, bytes] = {}

    async def download(request: web.Request) -> web.Response:
        algorithm = request.query.get("algorithm_type")
        if algorithm is not None and algorithm not in ("RSA", "SM2", "ALL"):
            raise ApiFailure.param(
                "algorithm_type", "must be RSA, SM2 or ALL", value=algorithm, location="query"
            )
        generation = len(core.identity.certificates)
        body = cache.get(generation)
        if body is None:
            cache.clear()
            body = cache[generation] = certificate_list(core)
        return web.Response(body=body, content_type="application/json")

    return [web.get(path, download) for path in CERTIFICATE_PATHS]
