"""Image upload without a server: the multipart body and its validation."""

from __future__ import annotations

import hashlib
import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxpay_async import ValidationError, WxPayClient
from wxpay_async.products import media

from .conftest import Recorder

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256))
#: What each extension's bytes must start with (the file formats' own signatures).
SIGNATURES = {".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff", ".png": PNG[:8], ".bmp": b"BM"}


def parse_form(upload: media.MultipartBody) -> list[tuple[dict[str, str], bytes]]:
    """Parse the body with the stdlib MIME parser (an independent reader of the format)."""
    head = f"Content-Type: {upload.content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + upload.body)
    assert message.is_multipart()
    parts = []
    for part in message.iter_parts():
        headers = {k.lower(): str(v) for k, v in part.items()}
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append((headers, payload))
    return parts


def test_meta_is_signed_json_and_the_form_holds_meta_then_file() -> None:
    upload = media.build_multipart("shop-front.PNG", PNG)
    meta = json.loads(upload.meta)
    assert meta == {"filename": "shop-front.PNG", "sha256": hashlib.sha256(PNG).hexdigest()}
    assert upload.meta == b'{"filename":"shop-front.PNG","sha256":"%s"}' % meta["sha256"].encode()
    (meta_headers, meta_body), (file_headers, file_body) = parse_form(upload)
    assert 'name="meta"' in meta_headers["content-disposition"]
    assert meta_headers["content-type"] == "application/json"
    assert meta_body == upload.meta
    assert 'name="file"' in file_headers["content-disposition"]
    assert 'filename="shop-front.PNG"' in file_headers["content-disposition"]
    assert file_headers["content-type"] == "image/png"
    assert file_body == PNG


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.jpg", "image/jpg"),
        ("a.JPEG", "image/jpg"),
        ("a.bmp", "image/bmp"),
        ("证件.png", "image/png"),
    ],
)
def test_content_type_follows_the_extension(name: str, content_type: str) -> None:
    data = SIGNATURES[name[name.rindex(".") :].lower()] + b"data"
    (_, _), (file_headers, _) = parse_form(media.build_multipart(name, data))
    assert file_headers["content-type"] == content_type


def test_each_build_is_self_consistent_and_the_boundary_is_declared() -> None:
    first = media.build_multipart("a.jpg", JPEG)
    second = media.build_multipart("a.jpg", JPEG)
    assert first.meta == second.meta  # the signed part is deterministic
    for upload in (first, second):
        boundary = upload.content_type.split("boundary=", 1)[1]
        assert upload.body.startswith(f"--{boundary}\r\n".encode())
        assert upload.body.endswith(f"--{boundary}--\r\n".encode())


@pytest.mark.parametrize(
    ("filename", "data", "field", "rule"),
    [
        ("a.gif", b"x", "filename", ".jpg, .jpeg, .png or .bmp"),
        ("a", b"x", "filename", ".jpg"),
        ("", b"x", "filename", "non-empty"),
        ("n" * 125 + ".png", b"x", "filename", "at most 128"),
        ('a".png', b"x", "filename", "plain file name"),
        ("dir/a.png", b"x", "filename", "plain file name"),
        ("a\r\nX-Evil: 1.png", b"x", "filename", "plain file name"),
        ("\U0001f600.png", PNG, "filename", "Basic Multilingual Plane"),
        ("a.png", b"", "data", "empty"),
        ("a.png", b"x" * (2 * 1024 * 1024 + 1), "data", "2 MB"),
        ("a.png", "text", "data", "bytes"),
        ("scan.jpg", b"%PDF-1.4 not an image", "data", "JPEG image"),
        ("a.png", JPEG, "data", "PNG image"),  # the part's Content-Type would be wrong
        ("a.bmp", PNG, "data", "BMP image"),
    ],
)
async def test_invalid_uploads_send_nothing(
    quiet_client: tuple[WxPayClient, Recorder], filename: str, data: Any, field: str, rule: str
) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await media.upload_image(client, filename, data)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert rec.requests == []


def test_exactly_two_megabytes_is_accepted() -> None:
    upload = media.build_multipart("big.jpg", JPEG[:4] + b"\0" * (2 * 1024 * 1024 - 4))
    assert len(upload.body) > 2 * 1024 * 1024
    assert "bytes>" in repr(upload)


async def test_unknown_host_is_refused(quiet_client: tuple[WxPayClient, Recorder]) -> None:
    client, rec = quiet_client
    with pytest.raises(ValidationError) as caught:
        await media.upload_image(client, "a.png", PNG, host="weixin")  # type: ignore[arg-type]
    assert caught.value.field == "host"
    assert rec.requests == []


@settings(max_examples=60, deadline=None)
@given(
    stem=st.text(
        alphabet=st.characters(
            max_codepoint=0xFFFF,  # WeChat takes 1-3-byte UTF-8 characters only
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
            blacklist_characters='"\\/',
        ),
        min_size=1,
        max_size=40,
    ).filter(str.isprintable),
    suffix=st.sampled_from([".jpg", ".jpeg", ".png", ".bmp", ".PNG"]),
    data=st.binary(min_size=1, max_size=4096),
)
def test_any_image_round_trips_through_the_form(stem: str, suffix: str, data: bytes) -> None:
    filename = stem + suffix
    data = SIGNATURES[suffix.lower()] + data
    upload = media.build_multipart(filename, data)
    (_, meta), (file_headers, payload) = parse_form(upload)
    assert json.loads(meta) == {"filename": filename, "sha256": hashlib.sha256(data).hexdigest()}
    assert payload == data
    assert file_headers["content-type"] == media.CONTENT_TYPES[suffix.lower()]
    assert upload.content_type.split("boundary=", 1)[1].encode() not in data
