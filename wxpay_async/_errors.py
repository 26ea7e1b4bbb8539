"""The exception tree of wxpay_async, in one place.

Every exception the library raises on purpose derives from :class:`WxPayError`::

    WxPayError
    ├── ValidationError              bad input, raised before anything is sent
    │                                (.field: dotted path such as "contact.email", .rule)
    ├── APIError                     WeChat Pay answered with a non-2xx status
    │   │                            (.status, .code, .message, .detail, .request_id, .verified)
    │   ├── BadRequestError          400  PARAM_ERROR, INVALID_REQUEST, ...
    │   ├── SignatureRejectedError   401  SIGN_ERROR: WeChat refused *our* signature
    │   ├── ForbiddenError           403  NO_AUTH
    │   ├── NotFoundError            404  ORDER_NOT_EXIST, RESOURCE_NOT_EXISTS
    │   ├── RateLimitedError         429  FREQUENCY_LIMITED / _LIMIT_EXCEED, RATELIMIT_EXCEEDED
    │   └── ServerError              5xx  SYSTEM_ERROR, SERVICE_UNAVAILABLE
    ├── SignatureVerificationError   a response or notification failed *our* verification
    │   ├── SignatureProbeError      the Wechatpay-Signature was a WECHATPAY/SIGNTEST/ probe
    │   ├── TimestampOutOfWindowError  Wechatpay-Timestamp outside the allowed window
    │   └── UnknownSerialError       no trusted key for the Wechatpay-Serial (after one refresh)
    ├── DecryptionError              AEAD tag or RSA padding check failed (wrong key or tampering)
    ├── MalformedNotificationError   a notification that verified but cannot be understood
    ├── UnexpectedResponseError      a verified answer whose body is not the documented shape
    ├── TransportError               no HTTP answer: connection refused/reset, DNS, timeout
    │   └── RequestTimeoutError      the total or read timeout elapsed
    └── CloudBaseError               api.weixin.qq.com errcode != 0 (.errcode, .errmsg)

`ValidationError` is also a :class:`ValueError`, `RequestTimeoutError` also a
:class:`TimeoutError`, so generic handlers keep working.

Rules the tree follows:

* ``str()`` of an :class:`APIError` carries what a support ticket needs: status, code,
  message, detail and the ``Request-ID``.
* An error built from an *unverified* answer (a 4xx/5xx without valid signature headers) says
  so (``verified=False``); the library never acts on an unverified 2xx.
* No exception message contains a private key, the APIv3 key, an ``Authorization`` header or a
  decrypted sensitive field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIError",
    "BadRequestError",
    "CloudBaseError",
    "DecryptionError",
    "ForbiddenError",
    "MalformedNotificationError",
    "NotFoundError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "SignatureProbeError",
    "SignatureRejectedError",
    "SignatureVerificationError",
    "TimestampOutOfWindowError",
    "TransportError",
    "UnexpectedResponseError",
    "UnknownSerialError",
    "ValidationError",
    "WxPayError",
    "api_error_for",
]


class WxPayError(Exception):
    """Base class of every error raised by wxpay_async."""


class ValidationError(WxPayError, ValueError):
    """Input broke a rule; raised before any request is sent.

    ``field`` is the dotted path of the offending field (``""`` for the whole object),
    ``rule`` says what was expected.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}" if field else rule)

    def prefixed(self, parent: str) -> ValidationError:
        """The same error with ``parent`` prepended to the field path."""
        path = f"{parent}.{self.field}" if self.field else parent
        if self.field.startswith("["):
            path = f"{parent}{self.field}"
        return type(self)(path, self.rule)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.rule))


class APIError(WxPayError):
    """WeChat Pay answered with a non-2xx status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        verified: bool = True,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.detail = dict(detail) if detail else None
        self.request_id = request_id
        self.verified = verified
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status} {self.code}: {self.message}"]
        if self.detail:
            parts.append(f"detail={self.detail}")
        if self.request_id:
            parts.append(f"Request-ID={self.request_id}")
        if not self.verified:
            parts.append("(answer not signature-verified)")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (
                type(self),
                self.status,
                self.code,
                self.message,
                self.detail,
                self.request_id,
                self.verified,
            ),
        )


def _rebuild_api_error(
    cls: type[APIError],
    status: int,
    code: str,
    message: str,
    detail: Mapping[str, Any] | None,
    request_id: str | None,
    verified: bool,
) -> APIError:
    return cls(status, code, message, detail=detail, request_id=request_id, verified=verified)


class BadRequestError(APIError):
    """400: PARAM_ERROR, INVALID_REQUEST and other business-rule refusals."""


class SignatureRejectedError(APIError):
    """401 SIGN_ERROR: WeChat Pay could not verify the request signature (key, serial, clock)."""


class ForbiddenError(APIError):
    """403 NO_AUTH: the merchant lacks the permission or the signed agreement."""


class NotFoundError(APIError):
    """404: the object does not exist."""


class RateLimitedError(APIError):
    """429: frequency limited; retried with backoff by default."""


class ServerError(APIError):
    """5xx: SYSTEM_ERROR / SERVICE_UNAVAILABLE; retried where a retry is safe."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: SignatureRejectedError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
}


def api_error_for(
    status: int,
    code: str,
    message: str,
    *,
    detail: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    verified: bool = True,
) -> APIError:
    """Build the :class:`APIError` subclass that matches ``status``."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, code, message, detail=detail, request_id=request_id, verified=verified)


class SignatureVerificationError(WxPayError):
    """A response or notification did not pass signature verification; its body was not used."""

    def __init__(self, reason: str, *, request_id: str | None = None) -> None:
        self.reason = reason
        self.request_id = request_id
        text = reason if request_id is None else f"{reason} (Request-ID={request_id})"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_sig_error, (type(self), self.reason, self.request_id))


def _rebuild_sig_error(
    cls: type[SignatureVerificationError], reason: str, request_id: str | None
) -> SignatureVerificationError:
    return cls(reason, request_id=request_id)


class SignatureProbeError(SignatureVerificationError):
    """WeChat Pay's deliberate ``WECHATPAY/SIGNTEST/`` probe; expected traffic, never accept it."""


class TimestampOutOfWindowError(SignatureVerificationError):
    """``Wechatpay-Timestamp`` is further from our clock than the configured window."""


class UnknownSerialError(SignatureVerificationError):
    """No trusted key matches ``Wechatpay-Serial``, even after refreshing certificates once."""


class DecryptionError(WxPayError):
    """AES-GCM authentication or RSA decryption failed: wrong key, or the data was altered."""


class MalformedNotificationError(WxPayError):
    """A notification whose signature verified but whose JSON or fields are unusable."""


class UnexpectedResponseError(WxPayError):
    """A verified answer whose body is not JSON or not the documented shape."""


class TransportError(WxPayError):
    """No HTTP answer was received (connection refused or reset, DNS failure, TLS error).

    ``connection_failed`` is true when no connection was made at all, so nothing was sent.
    """

    def __init__(self, message: str, *, connection_failed: bool = False) -> None:
        self.connection_failed = connection_failed
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_transport_error, (type(self), str(self), self.connection_failed))


def _rebuild_transport_error(
    cls: type[TransportError], message: str, connection_failed: bool
) -> TransportError:
    return cls(message, connection_failed=connection_failed)


class RequestTimeoutError(TransportError, TimeoutError):
    """The request did not complete within the configured timeout."""


class CloudBaseError(WxPayError):
    """api.weixin.qq.com returned a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"errcode {errcode}: {errmsg}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errcode, self.errmsg))
