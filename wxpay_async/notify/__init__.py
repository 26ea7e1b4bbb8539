"""Receiving WeChat Pay notifications: verify, decrypt, type, and handle each exactly once.

::

    verifier = NotificationVerifier(apiv3_key=..., trust=PublicKeyTrust(...))
    # or NotificationVerifier.from_client(client)

    async def on_event(notification: Notification) -> None:
        if notification.event_type == "PAYSCORE.USER_OPEN_SERVICE":
            ...  # notification.resource is a PermissionNotification

    inbox = SqliteInbox("notifications.db")
    app.router.add_post("/notify", aiohttp_handler(verifier, on_event, inbox=inbox))

Other frameworks call :func:`handle_notification` with the raw body bytes and the headers
(:func:`headers_from_meta` converts Django's ``request.META``). Spec §B8, §B9, §A2.4, §A3.4.
"""

from ._headers import HeadersLike, headers_from_meta
from ._http import NotificationHandler, aiohttp_handler, failure_body, handle_notification
from ._inbox import HandlerNotAwaitableError, HandlerTimeoutError, Inbox, MemoryInbox, Outcome
from ._model import Notification
from ._redis import RedisInbox
from ._registry import DEFAULT_MODELS, EventRegistry, ResourceModel
from ._sqlite import SqliteInbox
from ._verifier import (
    NotificationVerifier,
    ShortAPIv3KeyWarning,
    UnsupportedAlgorithmError,
    VerificationKeys,
)

__all__ = [
    "DEFAULT_MODELS",
    "EventRegistry",
    "HandlerNotAwaitableError",
    "HandlerTimeoutError",
    "HeadersLike",
    "Inbox",
    "MemoryInbox",
    "Notification",
    "NotificationHandler",
    "NotificationVerifier",
    "Outcome",
    "RedisInbox",
    "ResourceModel",
    "ShortAPIv3KeyWarning",
    "SqliteInbox",
    "UnsupportedAlgorithmError",
    "VerificationKeys",
    "aiohttp_handler",
    "failure_body",
    "handle_notification",
    "headers_from_meta",
]
