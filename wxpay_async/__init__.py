"""wxpay_async: an asyncio-native client for WeChat Pay's authorization and onboarding APIs."""

from ._client import WxPayClient
from ._config import Hosts, MerchantCredentials, RetryPolicy
from ._converter import converter
from ._endpoint import Endpoint
from ._errors import (
    APIError,
    BadRequestError,
    CloudBaseError,
    DecryptionError,
    ForbiddenError,
    MalformedNotificationError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    SignatureProbeError,
    SignatureRejectedError,
    SignatureVerificationError,
    TimestampOutOfWindowError,
    TransportError,
    UnexpectedResponseError,
    UnknownSerialError,
    ValidationError,
    WxPayError,
)
from ._version import __version__
from .trust import CertificateTrust, CombinedTrust, PublicKeyTrust

__all__ = [
    "APIError",
    "BadRequestError",
    "CertificateTrust",
    "CloudBaseError",
    "CombinedTrust",
    "DecryptionError",
    "Endpoint",
    "ForbiddenError",
    "Hosts",
    "MalformedNotificationError",
    "MerchantCredentials",
    "NotFoundError",
    "PublicKeyTrust",
    "RateLimitedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "SignatureProbeError",
    "SignatureRejectedError",
    "SignatureVerificationError",
    "TimestampOutOfWindowError",
    "TransportError",
    "UnexpectedResponseError",
    "UnknownSerialError",
    "ValidationError",
    "WxPayClient",
    "WxPayError",
    "__version__",
    "converter",
]
