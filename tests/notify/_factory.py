"""Builds signed, encrypted notifications the way WeChat Pay does (spec §B8), for tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from wxpay_async.crypto import aead_encrypt, build_response_message, new_nonce, sign
from wxpay_async.notify import Notification

KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
APIV3_KEY = b"0123456789abcdefghijABCDEFGHIJ01"  # 32 bytes
NOW = 1_700_000_000


@attrs.define
class NotificationFactory:
    private_key: RSAPrivateKey
    apiv3_key: bytes = APIV3_KEY
    serial: str = KEY_ID
    now: int = NOW

    def body(
        self,
        resource: dict[str, Any],
        *,
        event_type: str = "PAYSCORE.USER_OPEN_SERVICE",
        notification_id: str | None = None,
        associated_data: str | None = "payscore",
        nonce: str = "Kj7QIyUiYx1q",
        algorithm: str = "AEAD_AES_256_GCM",
        key: bytes | None = None,
        envelope: dict[str, Any] | None = None,
    ) -> bytes:
        plaintext = json.dumps(resource, ensure_ascii=False).encode()
        encrypted: dict[str, Any] = {
            "original_type": "payscore",
            "algorithm": algorithm,
            "ciphertext": aead_encrypt(key or self.apiv3_key, nonce, associated_data, plaintext),
            "nonce": nonce,
        }
        if associated_data is not None:
            encrypted["associated_data"] = associated_data
        document: dict[str, Any] = {
            "id": notification_id or str(uuid.uuid4()),
            "create_time": "2024-05-20T13:29:35+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "授权成功",
            "resource": encrypted,
        }
        document.update(envelope or {})
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def headers(
        self, body: bytes, *, timestamp: int | None = None, nonce: str | None = None
    ) -> dict[str, str]:
        ts = str(self.now if timestamp is None else timestamp)
        nonce = nonce or new_nonce()
        signature = sign(self.private_key, build_response_message(ts, nonce, body))
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": self.serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Request-ID": "08F78BB5AF0610D302A0F1E1A6E0F4A9",
            "Content-Type": "application/json",
        }

    def make(
        self, resource: dict[str, Any] | None = None, **options: Any
    ) -> tuple[dict[str, str], bytes]:
        body = self.body(resource if resource is not None else PERMISSION_RESOURCE, **options)
        return self.headers(body), body


#: A PayScore authorization resource as the S2 samples spell it (``mch_id``/``sub_mch_id``).
PERMISSION_RESOURCE: dict[str, Any] = {
    "appid": "wxd678efh567hg6787",
    "mch_id": "1230000109",
    "sub_mch_id": "1900000109",
    "channel_id": "1900000108",
    "service_id": "500001",
    "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    "user_service_status": "USER_OPEN_SERVICE",
    "openorclose_time": "20180225112233",
    "authorization_code": "1275b0ee-5e48-4e54-b4c1-9e8e9c2ce0f4",
}


def note(notification_id: str = "EV-1") -> Notification:
    """A parsed notification for the inbox tests (no resource)."""
    return Notification(
        id=notification_id,
        create_time=dt.datetime(2024, 5, 20, tzinfo=dt.UTC),
        event_type="PAYSCORE.USER_OPEN_SERVICE",
        resource_type="encrypt-resource",
        resource={},
    )
