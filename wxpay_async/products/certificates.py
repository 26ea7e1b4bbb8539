"""Platform certificate download (spec §A4.6, §B5).

``CertificateTrust`` already downloads and refreshes certificates by itself; this call is for
tools that want the list (inspect serials and expiry, pin certificates for a notification-only
process). Each entry is decrypted under the APIv3 key and checked, and the list's own signature
is verified by :func:`wxpay_async.trust.parse_certificate_download`.
"""

from __future__ import annotations

from typing import cast

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from .._client import WxPayClient
from .._config import HostName
from .._endpoint import Endpoint
from .._errors import ValidationError
from ..crypto import SignedHeaders
from ..trust import (
    CERTIFICATE_PATHS,
    CertificateRegion,
    PlatformCertificate,
    parse_certificate_download,
)

__all__ = ["ENDPOINTS", "PlatformCertificate", "download_platform_certificates"]

#: One endpoint per region. The answer is verified against a certificate from the same list
#: (after a rotation, no client holds the new signing certificate yet), so the generic
#: verify middleware is off here and :func:`parse_certificate_download` does it.
ENDPOINTS: dict[CertificateRegion, Endpoint] = {
    region: Endpoint(
        name=f"certificates.download.{region}",
        method="GET",
        host=cast(HostName, host),
        path=path,
        verify_response=False,
    )
    for region, (host, path) in CERTIFICATE_PATHS.items()
}


async def download_platform_certificates(
    client: WxPayClient, region: CertificateRegion = "mainland"
) -> list[PlatformCertificate]:
    """Download, decrypt and verify the platform certificates of ``region``.

    ``region``: ``"mainland"`` (``/v3/certificates``), ``"global"`` (apihk
    ``/v3/global/certificates``) or ``"hk"`` (``/hk/v3/certificates``). Expired entries are
    dropped. Errors: ``DecryptionError`` (wrong APIv3 key), ``SignatureVerificationError``,
    ``APIError`` (e.g. 401 SIGN_ERROR); SYSTEM_ERROR is retried.
    Doc: https://pay.weixin.qq.com/doc/global/v3/zh/4012354540
    """
    endpoint = ENDPOINTS.get(region)
    if endpoint is None:
        raise ValidationError("region", f"must be one of {', '.join(sorted(ENDPOINTS))}")
    raw = await client.send(endpoint)
    # A list without a signature is refused.
    signed = SignedHeaders.checked(raw.headers, client.signature_window)
    # In public-key mode the list may be signed with the WeChat Pay public key instead of a
    # certificate from the list itself.
    known: RSAPublicKey | None = None
    if client.trust.knows(signed.serial):
        known = await client.trust.verification_key(signed.serial)

    def extra_keys(serial: str) -> RSAPublicKey | None:
        return known if serial == signed.serial else None

    return parse_certificate_download(raw, client.credentials.apiv3_key, extra_keys=extra_keys)
