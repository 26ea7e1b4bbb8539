"""Throwaway keys for the request benchmarks: a merchant key pair and a WeChat Pay public key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from wxpay_async import Hosts, MerchantCredentials, PublicKeyTrust

__all__ = ["Identity"]


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@attrs.frozen(kw_only=True)
class Identity:
    """Everything a client and the benchmark server need, freshly generated (RSA-2048)."""

    mchid: str
    serial_no: str
    apiv3_key: str
    merchant_private_pem: str = attrs.field(repr=False)
    #: The server signs answers with this key; clients verify with ``platform_public_pem``.
    platform_private_pem: str = attrs.field(repr=False)
    platform_public_pem: str
    public_key_id: str

    @classmethod
    def generate(cls) -> Identity:
        merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            mchid="1900000109",
            serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            apiv3_key="0123456789abcdef0123456789abcdef",
            merchant_private_pem=_private_pem(merchant),
            platform_private_pem=_private_pem(platform),
            platform_public_pem=_public_pem(platform),
            public_key_id="PUB_KEY_ID_0114232134912410000000000000",
        )

    def floor_keys(self) -> tuple[rsa.RSAPrivateKey, rsa.RSAPublicKey, str]:
        """What a hand-written floor client needs: the merchant signing key, the key that
        verifies answers, and the fixed head of its Authorization header (up to the nonce)."""
        key = serialization.load_pem_private_key(self.merchant_private_pem.encode(), None)
        public = serialization.load_pem_public_key(self.platform_public_pem.encode())
        assert isinstance(key, rsa.RSAPrivateKey)
        assert isinstance(public, rsa.RSAPublicKey)
        head = (
            f'WECHATPAY2-SHA256-RSA2048 mchid="{self.mchid}",'
            f'serial_no="{self.serial_no}",nonce_str="'
        )
        return key, public, head

    def client_options(self, base_url: str) -> tuple[MerchantCredentials, PublicKeyTrust, Hosts]:
        """``WxPayClient``'s credentials, public-key trust and hosts for this identity's server.

        ``wxpay_async`` is imported here, when called: a benchmark child may have been pointed
        at another copy of the package.
        """
        from wxpay_async import Hosts, MerchantCredentials, PublicKeyTrust

        credentials = MerchantCredentials(
            mchid=self.mchid,
            serial_no=self.serial_no,
            private_key=self.merchant_private_pem,
            apiv3_key=self.apiv3_key,
        )
        trust = PublicKeyTrust(self.public_key_id, self.platform_public_pem)
        return credentials, trust, Hosts.single(base_url)
