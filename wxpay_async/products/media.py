"""Image upload → ``media_id`` for onboarding documents and screenshots (spec §A4.5, §B10).

The signature covers only the ``meta`` JSON (``{"filename":…,"sha256":…}``), not the multipart
body. Both are built once per call, so every retry sends byte-identical data under a fresh
signature. Re-uploading the same image has no side effect beyond a new media ID, so the call is
retried like a read.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import PurePosixPath
from typing import Any, Literal

import attrs

from .._client import WxPayClient, decode_json
from .._converter import dumps
from .._endpoint import Endpoint
from .._errors import ValidationError

__all__ = [
    "CONTENT_TYPES",
    "MAX_BYTES",
    "UPLOAD",
    "MediaUpload",
    "MultipartBody",
    "build_multipart",
    "upload_image",
]

#: 2 MB: the HK / Global limit (the mainland page allows more; the stricter limit is enforced).
MAX_BYTES = 2 * 1024 * 1024
MAX_FILENAME = 128
#: Extension → part Content-Type, as the official SDKs send it.
CONTENT_TYPES = {
    ".jpg": "image/jpg",
    ".jpeg": "image/jpg",
    ".png": "image/png",
    ".bmp": "image/bmp",
}

#: Extension → the bytes every file of that format starts with.
_MAGIC = {
    ".jpg": b"\xff\xd8\xff",
    ".jpeg": b"\xff\xd8\xff",
    ".png": b"\x89PNG\r\n\x1a\n",
    ".bmp": b"BM",
}
_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}

UPLOAD = Endpoint(
    name="media.upload",
    method="POST",
    host="mainland",
    path="/v3/merchant/media/upload",
    retry_safe=True,
)


@attrs.frozen(kw_only=True)
class MediaUpload:
    """The upload answer: the ``media_id`` to put in onboarding requests."""

    media_id: str
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True, repr=False)
class MultipartBody:
    """The exact bytes of one upload: the signed ``meta`` and the multipart body around it."""

    meta: bytes
    body: bytes
    content_type: str

    def __repr__(self) -> str:
        return f"MultipartBody(meta={self.meta!r}, body=<{len(self.body)} bytes>)"


def _check_filename(filename: Any) -> str:
    if not isinstance(filename, str) or not filename:
        raise ValidationError("filename", "must be a non-empty string")
    if len(filename) > MAX_FILENAME:
        raise ValidationError("filename", f"must be at most {MAX_FILENAME} characters")
    if not filename.isascii() and any(ord(ch) > 0xFFFF for ch in filename):
        # Signed into the meta JSON: WeChat takes 1-3-byte UTF-8 characters only (§B1).
        raise ValidationError(
            "filename", "must not contain characters outside the Basic Multilingual Plane"
        )
    if any(ch in filename for ch in '"\\/\r\n') or not filename.isprintable():
        # It is written into a Content-Disposition header: no quotes, separators or controls.
        raise ValidationError(
            "filename", "must be a plain file name (no quotes, slashes, controls)"
        )
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise ValidationError("filename", "must end with .jpg, .jpeg, .png or .bmp")
    return suffix


def _check_data(data: Any, suffix: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValidationError("data", f"must be bytes, got {type(data).__name__}")
    payload = bytes(data)
    if not payload:
        raise ValidationError("data", "must not be empty")
    if len(payload) > MAX_BYTES:
        raise ValidationError(
            "data", f"must be at most 2 MB ({MAX_BYTES} bytes), got {len(payload)}"
        )
    if not payload.startswith(_MAGIC[suffix]):
        # The part's Content-Type follows the extension: the bytes must be that format.
        raise ValidationError("data", f"must be a {_FORMAT[suffix]} image, as its file name says")
    return payload


def build_multipart(filename: str, data: bytes) -> MultipartBody:
    """Validate and build the upload once: ``meta`` JSON, then the two-part form around it.

    Raises ``ValidationError`` (``filename`` or ``data``) for an unsupported extension, a name
    over 128 characters or with characters outside the BMP, an empty file, one over 2 MB, or
    bytes that are not the format the extension names (JPEG, PNG or BMP, by their signature).
    """
    suffix = _check_filename(filename)
    payload = _check_data(data, suffix)
    meta = dumps({"filename": filename, "sha256": hashlib.sha256(payload).hexdigest()})
    boundary = uuid.uuid4().hex
    while boundary.encode() in payload:  # pragma: no cover - 2**-128 per attempt
        boundary = uuid.uuid4().hex
    dash = f"--{boundary}".encode()
    name = filename.encode()
    body = b"".join(
        [
            dash + b"\r\n",
            b'Content-Disposition: form-data; name="meta"\r\n',
            b"Content-Type: application/json\r\n\r\n",
            meta + b"\r\n",
            dash + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="' + name + b'"\r\n',
            f"Content-Type: {CONTENT_TYPES[suffix]}\r\n\r\n".encode(),
            payload + b"\r\n",
            dash + b"--\r\n",
        ]
    )
    return MultipartBody(
        meta=meta, body=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


async def upload_image(
    client: WxPayClient,
    filename: str,
    data: bytes,
    *,
    host: Literal["mainland", "global_"] = "mainland",
) -> MediaUpload:
    """Upload a JPG/PNG/BMP image (≤ 2 MB) and return its ``media_id``.

    ``host="global_"`` uploads to apihk (WeChat Pay Global); the default is the mainland host
    used by the HK ``/hk/v3`` onboarding. Errors: ``ValidationError`` before sending;
    ``BadRequestError`` PARAM_ERROR (bad meta, sha256 mismatch); SYSTEM_ERROR is retried.
    Doc: https://pay.weixin.qq.com/doc/global/v3/zh/4013025099
    """
    if host not in ("mainland", "global_"):
        raise ValidationError("host", "must be 'mainland' or 'global_'")
    upload = build_multipart(filename, data)
    raw = await client.send(
        UPLOAD,
        body=upload.body,
        sign_body=upload.meta,
        content_type=upload.content_type,
        host=host,
    )
    return decode_json(raw, MediaUpload)
