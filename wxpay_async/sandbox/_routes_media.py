"""Image upload (spec A4.5, §B10): multipart ``meta`` + ``file``; the signature covers ``meta``."""

from __future__ import annotations

import hashlib
import json
import re

import attrs
from aiohttp import web

from ._core import Core
from ._protocol import ApiFailure, answer
from ._schema import Str, check, obj, pointer
from ._state import MediaFile

__all__ = ["UPLOAD_PATH", "Part", "routes", "signed_meta", "split_multipart"]

UPLOAD_PATH = "/v3/merchant/media/upload"
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # HK / global limit (the mainland page allows 5 MB)
_META = obj(
    {
        "filename": Str(
            128,
            pattern=r"(?i).+\.(jpg|jpeg|bmp|png)",
            describe="must end with .jpg, .jpeg, .bmp or .png",
        ),
        "sha256": Str(64, pattern=r"[0-9A-Fa-f]{64}", describe="must be the hex SHA-256"),
    }
)
#: The image types spec B10 names for the file part, by the data's leading bytes.
_IMAGE_TYPES = {
    b"\xff\xd8\xff": frozenset({"image/jpg", "image/jpeg"}),
    b"\x89PNG\r\n\x1a\n": frozenset({"image/png"}),
    b"BM": frozenset({"image/bmp"}),
}
_MAGIC = tuple(_IMAGE_TYPES)
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NAME = re.compile(r'\bname="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(r'\bfilename="([^"]*)"', re.IGNORECASE)


@attrs.frozen(kw_only=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes = attrs.field(repr=False)


def split_multipart(body: bytes, content_type: str) -> dict[str, Part]:
    """Split a ``multipart/form-data`` body into its parts, keeping each part's exact bytes."""
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ApiFailure.invalid("Content-Type must be multipart/form-data with a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ApiFailure.param("", "multipart body is malformed (no closing boundary)")
    parts: dict[str, Part] = {}
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ApiFailure.param("", "multipart part is malformed")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ApiFailure.param("", "multipart part has no header/body separator")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _NAME.search(disposition)
        if name is None:
            raise ApiFailure.param("", "multipart part without a form-data name")
        filename = _FILENAME.search(disposition)
        if name.group(1) in parts:
            raise ApiFailure.param("", f"multipart part {name.group(1)!r} appears twice")
        parts[name.group(1)] = Part(
            name=name.group(1),
            filename=filename.group(1) if filename else None,
            content_type=headers.get("content-type"),
            data=data,
        )
    return parts


def _media_type(value: str | None) -> str:
    return (value or "").partition(";")[0].strip().lower()


def signed_meta(body: bytes, content_type: str) -> bytes:
    """What an upload's signature covers: the ``meta`` part's bytes (§B10)."""
    meta = split_multipart(body, content_type).get("meta")
    if meta is None:
        raise ApiFailure.param(pointer("meta"), "缺少必填参数 (the meta part is required)")
    return meta.data


def routes(core: Core) -> list[web.RouteDef]:
    async def upload(request: web.Request) -> web.Response:
        body = await request.read()
        parts = split_multipart(body, request.headers.get("Content-Type", ""))
        meta_part, file_part = parts.get("meta"), parts.get("file")
        if meta_part is None:
            raise ApiFailure.param(pointer("meta"), "缺少必填参数 (the meta part is required)")
        if file_part is None:
            raise ApiFailure.param(pointer("file"), "缺少必填参数 (the file part is required)")
        # Spec B10: meta (application/json), then file (filename, an image type), in order.
        if list(parts) != ["meta", "file"]:
            raise ApiFailure.param("", "multipart parts must be meta, then file, and no others")
        if _media_type(meta_part.content_type) != "application/json":
            raise ApiFailure.param(pointer("meta"), "part must have Content-Type application/json")
        try:
            meta = json.loads(meta_part.data)
        except (ValueError, UnicodeDecodeError):
            raise ApiFailure.param(pointer("meta"), "must be JSON") from None
        try:
            check(_META, meta)
        except ApiFailure as failure:
            if failure.detail is not None:
                failure.detail["field"] = "/meta" + str(failure.detail["field"])
            raise
        data = file_part.data
        if not data:
            raise ApiFailure.param(pointer("file"), "must not be empty")
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiFailure.param(pointer("file"), "图片大小不能超过2M (at most 2 MB)")
        if not data.startswith(_MAGIC):
            raise ApiFailure.param(pointer("file"), "must be a JPG, PNG or BMP image")
        allowed = next(types for magic, types in _IMAGE_TYPES.items() if data.startswith(magic))
        if _media_type(file_part.content_type) not in allowed:
            raise ApiFailure.param(
                pointer("file"), f"part must have Content-Type {' or '.join(sorted(allowed))}"
            )
        if file_part.filename != meta["filename"]:
            raise ApiFailure.param(pointer("file"), "part's filename must be meta's filename")
        digest = hashlib.sha256(data).hexdigest()
        if digest != meta["sha256"].lower():
            raise ApiFailure.param(
                "/meta/sha256", "does not match the SHA-256 of the file", value=meta["sha256"]
            )
        media = MediaFile(
            media_id=core.state.new_media_id(),
            filename=meta["filename"],
            sha256=digest,
            size=len(data),
        )
        core.state.media[media.media_id] = media
        return answer({"media_id": media.media_id})

    return [web.post(UPLOAD_PATH, upload)]
