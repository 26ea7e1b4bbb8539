"""HK onboarding's per-call and module-wide options for what spec §A4 leaves unconfirmed."""

from __future__ import annotations

import json
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import pytest

from wxpay_async import ValidationError, WxPayClient, converter
from wxpay_async.products import hk_merchants, media
from wxpay_async.sandbox import Sandbox

from .conftest import Recorder, calls
from .seeds import HK_CREATE_REQUEST

PATH = "/hk/v3/merchants"
PHOTOS = ["media-1", "media-2"]


def application(**changes: Any) -> dict[str, Any]:
    data = deepcopy(HK_CREATE_REQUEST)
    data["business"] = {**data["business"], "store_photos": PHOTOS}
    data.update(changes)
    return data


def sent_photos(body: bytes) -> Any:
    return json.loads(body)["business"]["store_photos"]


async def test_store_photos_go_as_a_json_array_string_by_default(
    make_client: Callable[..., WxPayClient],
) -> None:
    async with make_client() as client:
        prepared = await hk_merchants.prepare_create(client, application())
    assert sent_photos(prepared.body) == json.dumps(PHOTOS, separators=(",", ":"))


async def test_store_photos_go_as_an_array_per_call_or_module_wide(
    make_client: Callable[..., WxPayClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_client() as client:
        per_call = await hk_merchants.prepare_create(client, application(), store_photos_as="array")
        monkeypatch.setattr(hk_merchants, "STORE_PHOTOS_AS", "array")
        module_wide = await hk_merchants.prepare_create(client, application())
        overridden = await hk_merchants.prepare_create(
            client, application(), store_photos_as="string"
        )
    assert sent_photos(per_call.body) == PHOTOS
    assert sent_photos(module_wide.body) == PHOTOS
    assert isinstance(sent_photos(overridden.body), str)
    # Everything else is sent as it is in the string form.
    as_array = json.loads(per_call.body)
    as_string = json.loads(overridden.body)
    for document in (as_array, as_string):
        del document["contact"]  # encrypted afresh each time
        del document["business"]["store_photos"]
    assert as_array == as_string


async def test_an_unknown_store_photos_form_is_refused_before_sending(
    make_client: Callable[..., WxPayClient], recorder: tuple[Recorder, str]
) -> None:
    rec, url = recorder
    wrong: Any = "list"
    async with make_client(url) as client:
        with pytest.raises(ValidationError) as created:
            await hk_merchants.create_submerchant(client, application(), store_photos_as=wrong)
        modification = application(sub_mchid="1900000109")
        with pytest.raises(ValidationError) as modified:
            await hk_merchants.modify_submerchant(client, modification, store_photos_as=wrong)
    assert created.value.field == modified.value.field == "store_photos_as"
    assert rec.requests == []


async def test_the_sandbox_takes_store_photos_as_an_array(sb: Sandbox) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    async with sb.client() as client:
        photo = await media.upload_image(client, "store.png", png)
        business = {**HK_CREATE_REQUEST["business"], "store_photos": [photo.media_id]}
        data = {**deepcopy(HK_CREATE_REQUEST), "sp_mchid": sb.credentials.mchid}
        created = await hk_merchants.create_submerchant(
            client, {**data, "business": business}, store_photos_as="array"
        )
    assert created.sub_mchid
    assert sent_photos(calls(sb, PATH)[0].body) == [photo.media_id]


async def test_modify_sends_an_idempotency_key_when_given(sb: Sandbox) -> None:
    data = {**deepcopy(HK_CREATE_REQUEST), "sp_mchid": sb.credentials.mchid}
    async with sb.client() as client:
        created = await hk_merchants.create_submerchant(client, data)
        await hk_merchants.modify_submerchant(
            client, {**data, "sub_mchid": created.sub_mchid}, idempotency_key="modify42"
        )
        await hk_merchants.modify_submerchant(client, {**data, "sub_mchid": created.sub_mchid})
        with pytest.raises(ValidationError) as info:
            await hk_merchants.modify_submerchant(
                client, {**data, "sub_mchid": created.sub_mchid}, idempotency_key="has space"
            )
    assert info.value.field == "idempotency_key"
    puts = [r for r in calls(sb, PATH) if r.method == "PUT"]
    assert [r.headers.get("Idempotency-Key") for r in puts] == ["modify42", None]


async def test_a_bad_padding_for_the_answer_is_refused_before_the_query(
    make_client: Callable[..., WxPayClient], recorder: tuple[Recorder, str]
) -> None:
    rec, url = recorder
    async with make_client(url) as client:
        with pytest.raises(ValidationError) as info:
            await hk_merchants.get_submerchant(
                client,
                "1900000109",
                sp_appid="wx1",
                sp_mchid="1",
                padding="RSA",  # type: ignore[arg-type]
            )
    assert info.value.field == "padding"
    assert rec.requests == []


def test_store_photos_in_an_answer_are_read_as_a_string_or_an_array() -> None:
    for photos in ('["a","b"]', ["a", "b"]):
        answer = converter.structure(
            {"sub_mchid": "1", "business": {"business_type": "ONLINE", "store_photos": photos}},
            hk_merchants.SubMerchant,
        )
        assert answer.business is not None
        assert json.loads(answer.business.store_photos or "") == ["a", "b"]


async def test_unknown_keys_of_any_type_are_a_validation_error(
    make_client: Callable[..., WxPayClient], recorder: tuple[Recorder, str]
) -> None:
    rec, url = recorder
    async with make_client(url) as client:
        with pytest.raises(ValidationError) as info:
            await hk_merchants.create_submerchant(client, {**application(), 1: "x", "zz": "y"})
    assert info.value.field == "1"
    assert "is not a field" in info.value.rule
    assert rec.requests == []
