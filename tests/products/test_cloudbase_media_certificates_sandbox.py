"""Cloud-base, image upload and certificate download against the sandbox."""

from __future__ import annotations

import hashlib
import json

import pytest

from wxpay_async import (
    BadRequestError,
    CloudBaseError,
    DecryptionError,
    MerchantCredentials,
    SignatureVerificationError,
    ValidationError,
    WxPayClient,
)
from wxpay_async.products import certificates, cloudbase, media
from wxpay_async.sandbox import Sandbox

from .conftest import Recorder, calls
from .seeds import CLOUDBASE_AUTH_REQUEST

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
UPLOAD = "/v3/merchant/media/upload"


# -- cloud-base ----------------------------------------------------------------------------------


async def test_seed_auth_request_then_listing_shows_the_confirmation(sb: Sandbox) -> None:
    async with sb.client() as client:
        result = await cloudbase.get_wechatpay_auth(client, **CLOUDBASE_AUTH_REQUEST)
        waiting = await cloudbase.list_wechatpay_merchants(client)
        sb.confirm_cloudbase(CLOUDBASE_AUTH_REQUEST["merchant_code"], "bind")
        confirmed = await cloudbase.list_wechatpay_merchants(client)
    assert (result.errcode, result.errmsg) == (0, "ok")  # the seed's answer
    (before,) = waiting.merchants
    (after,) = confirmed.merchants
    assert before.merchant_code == after.merchant_code == "1900006511"
    assert before.mch_relation_state != after.mch_relation_state
    (sent,) = calls(sb, "/tcb/wxpayopenauth")
    assert json.loads(sent.body) == CLOUDBASE_AUTH_REQUEST
    assert "Authorization" not in sent.headers  # not a v3 API: nothing to sign


async def test_expired_token_is_refreshed_and_the_call_resent(sb: Sandbox) -> None:
    async with sb.client() as client:
        await cloudbase.list_wechatpay_merchants(client)  # caches the current token
        fresh = sb.expire_access_token()
        await cloudbase.get_wechatpay_auth(client, "openjsapi", "1900006511")
    auth = calls(sb, "/tcb/wxpayopenauth")
    assert len(auth) == 2
    assert auth[0].path != auth[1].path
    assert auth[1].path.endswith(f"access_token={fresh}")
    assert auth[0].body == auth[1].body


async def test_invalid_fixed_token_raises_without_leaking_it(sb: Sandbox) -> None:
    async with sb.client(access_token="not-the-token-XYZ") as client:
        with pytest.raises(CloudBaseError) as caught:
            await cloudbase.list_wechatpay_merchants(client)
    assert caught.value.errcode == 40014
    assert "not-the-token-XYZ" not in str(caught.value)
    assert len(calls(sb, "/tcb/")) == 1


async def test_system_busy_is_retried(sb: Sandbox) -> None:
    sb.faults.queue("POST /tcb/wxpayopenauth", "system_error", times=2)
    async with sb.client() as client:
        result = await cloudbase.get_wechatpay_auth(client, "openrefund", "1900006511")
    assert result.errcode == 0
    assert len(calls(sb, "/tcb/wxpayopenauth")) == 3


async def test_cloudbase_validation_sends_nothing(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError):
            await cloudbase.get_wechatpay_auth(client, "refund", "1900006511")
    assert sb.requests == []


# -- media ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["mainland", "global_"])
async def test_upload_returns_a_media_id(sb_any_mode: Sandbox, host: str) -> None:
    async with sb_any_mode.client() as client:
        upload = await media.upload_image(client, "licence.png", PNG, host=host)  # type: ignore[arg-type]
    assert upload.media_id
    assert sb_any_mode.state.media[upload.media_id].sha256 == hashlib.sha256(PNG).hexdigest()


async def test_upload_retry_resends_identical_bytes_with_new_signatures(
    sb: Sandbox, signatures: list[str]
) -> None:
    sb.faults.queue(f"POST {UPLOAD}", "system_error")
    async with sb.client() as client:
        upload = await media.upload_image(client, "licence.jpg", b"\xff\xd8\xff" + PNG)
    first, second = calls(sb, UPLOAD)
    assert first.body == second.body
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert len(set(signatures)) == 2
    assert upload.media_id


async def test_what_is_not_an_image_is_refused_before_sending(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError) as caught:
            await media.upload_image(client, "fake.png", b"not an image at all")
    assert caught.value.field == "data"
    assert calls(sb, UPLOAD) == []


async def test_server_refuses_what_is_not_an_image(sb: Sandbox) -> None:
    # Past the client's own check (the same form with its file bytes swapped): the sandbox
    # refuses it as WeChat does.
    garbage = b"not an image at all"
    form = media.build_multipart("fake.png", PNG)
    old_hash, new_hash = hashlib.sha256(PNG).hexdigest(), hashlib.sha256(garbage).hexdigest()
    meta = form.meta.replace(old_hash.encode(), new_hash.encode())
    body = form.body.replace(form.meta, meta).replace(PNG, garbage)
    async with sb.client() as client:
        with pytest.raises(BadRequestError) as caught:
            await client.send(
                media.UPLOAD, body=body, sign_body=meta, content_type=form.content_type
            )
    assert caught.value.code == "PARAM_ERROR"
    assert len(calls(sb, UPLOAD)) == 1


async def test_upload_validation_sends_nothing(sb: Sandbox) -> None:
    async with sb.client() as client:
        with pytest.raises(ValidationError):
            await media.upload_image(client, "licence.pdf", PNG)
    assert sb.requests == []


# -- certificates --------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["mainland", "global", "hk"])
async def test_download_in_certificate_mode(sb_any_mode: Sandbox, region: str) -> None:
    sb = sb_any_mode
    async with sb.client() as client:
        certs = await certificates.download_platform_certificates(client, region)  # type: ignore[arg-type]
    serials = {c.serial_no for c in certs}
    assert serials == {c.serial_no for c in sb.identity.certificates}
    if sb.key_mode == "certificate":
        assert sb.wechatpay_serial in serials
    for cert in certs:
        assert cert.expire_time > cert.effective_time


async def test_download_after_rotation_lists_both(sb_any_mode: Sandbox) -> None:
    sb = sb_any_mode
    async with sb.client() as client:
        old = {c.serial_no for c in await certificates.download_platform_certificates(client)}
        new_serial = sb.rotate_platform_certificate()
        both = {c.serial_no for c in await certificates.download_platform_certificates(client)}
    assert new_serial not in old
    assert both == old | {new_serial}


@pytest.mark.parametrize("fault", ["bad_signature", "signtest", "unsigned", "stale_timestamp"])
async def test_download_with_a_bad_signature_is_refused(sb: Sandbox, fault: str) -> None:
    sb.faults.queue("GET /v3/certificates", fault)
    async with sb.client() as client:
        with pytest.raises(SignatureVerificationError):
            await certificates.download_platform_certificates(client)


async def test_download_with_the_wrong_apiv3_key_fails_to_decrypt(sb: Sandbox) -> None:
    good = sb.credentials
    wrong = MerchantCredentials(
        mchid=good.mchid,
        serial_no=good.serial_no,
        private_key=good.private_key,
        apiv3_key="x" * 32,
    )
    async with sb.client(credentials=wrong) as client:
        with pytest.raises(DecryptionError):
            await certificates.download_platform_certificates(client)


async def test_unknown_region_is_refused(quiet_client: tuple[WxPayClient, Recorder]) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await certificates.download_platform_certificates(client, "moon")  # type: ignore[arg-type]
    assert caught.value.field == "region"
    assert rec.requests == []
