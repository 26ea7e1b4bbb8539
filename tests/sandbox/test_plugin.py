"""The pytest plugin's fixtures hand out started sandboxes in each key mode."""

from __future__ import annotations

from tests.sandbox.helpers import H5_STATE, document
from wxpay_async import CertificateTrust, PublicKeyTrust
from wxpay_async.sandbox import DEFAULT_SUB_MCHID, Sandbox


async def test_public_key_fixture(wxpay_sandbox: Sandbox) -> None:
    assert isinstance(wxpay_sandbox.trust, PublicKeyTrust)
    assert wxpay_sandbox.wechatpay_serial.startswith("PUB_KEY_ID_")
    async with wxpay_sandbox.client() as client:
        raw = await client.send(H5_STATE, path_params={"sub_mchid": DEFAULT_SUB_MCHID})
        assert raw.headers["Wechatpay-Serial"] == wxpay_sandbox.wechatpay_serial
        assert document(raw)["authorization_state"] == "UNAUTHORIZED"


async def test_certificate_fixture(wxpay_sandbox_certificate: Sandbox) -> None:
    sb = wxpay_sandbox_certificate
    assert isinstance(sb.trust, CertificateTrust)
    async with sb.client() as client:
        raw = await client.send(H5_STATE, path_params={"sub_mchid": DEFAULT_SUB_MCHID})
        assert raw.headers["Wechatpay-Serial"] == sb.identity.current_certificate.serial_no
        assert isinstance(client.trust, CertificateTrust)
        assert client.trust.refresh_count == 1


async def test_start_without_context_manager() -> None:
    sb = await Sandbox.start()
    try:
        assert sb.url.startswith("http://127.0.0.1:")
        assert "secret" not in repr(sb)
        assert sb.identity.apiv3_key not in repr(sb.identity)
        assert sb.identity.apiv3_key not in repr(sb.credentials)
    finally:
        await sb.stop()
