"""RedisInbox: an inbox shared by every server that receives notifications.

Two keys per notification ID, in one hash slot (``{id}`` hash tag) so the Lua scripts also run
on Redis Cluster:

* ``<prefix>{<id>}:claim`` — the claim: a random token, ``SET NX PX lease``;
* ``<prefix>{<id>}:done`` — the done marker, kept ``retention`` seconds.

Claiming checks the done marker and sets the claim in one script, and completion writes the
done marker *before* dropping the claim, so no delivery can ever see "not done, not claimed"
after the handler succeeded. Release and renewal compare the token first (compare-and-delete,
compare-and-expire): a delivery whose lease ran out never removes a newer holder's claim.
Completion reports whether the token still held the claim; if not (the lease lapsed: the
holder's loop was blocked, or Redis unreachable, for longer than the lease), another delivery
may have run the handler too, and the inbox logs an ERROR (see :class:`Inbox`).
``redis`` is an optional dependency (``pip install 'wxpay_async[redis]'``), imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ValidationError
from ._checks import is_async_callable
from ._inbox import DEFAULT_RETENTION, Claim, Inbox

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisInbox"]

# 1 = claimed, 2 = already done, 0 = held by someone else
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
# 1 = the token still held the claim, 0 = it had lapsed; "done" is recorded either way.
_COMPLETE = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _import_redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "RedisInbox needs the redis package: pip install 'wxpay_async[redis]'"
        ) from None
    return redis_asyncio


class RedisInbox(Inbox):
    """An inbox in Redis, for several processes or machines.

    ``url_or_client`` is a ``redis://`` URL (the inbox then owns, and closes, its client) or
    a ``redis.asyncio.Redis`` (or ``RedisCluster``) you manage; a synchronous ``redis.Redis``
    is refused. See :class:`Inbox` for ``lease``, ``wait``, ``retention`` and
    ``handler_timeout``, and for the limits of exactly-once (a lapsed lease); ``prefix``
    namespaces the keys.
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        prefix: str = "wxpay:notify:",
        lease: float = 30.0,
        wait: float = 2.0,
        retention: float = DEFAULT_RETENTION,
        poll_interval: float = 0.05,
        handler_timeout: float | None = None,
    ) -> None:
        super().__init__(
            lease=lease,
            wait=wait,
            retention=retention,
            poll_interval=poll_interval,
            handler_timeout=handler_timeout,
        )
        redis_asyncio = _import_redis()
        if isinstance(url_or_client, str):
            try:
                self._client: Redis = redis_asyncio.Redis.from_url(url_or_client)
            except ValueError:  # its message may quote the URL, password included
                raise ValidationError(
                    "url_or_client", "must be a redis://, rediss:// or unix:// URL"
                ) from None
            self._owned = True
        elif _is_async_client(url_or_client):
            self._client = url_or_client
            self._owned = False
        else:
            raise ValidationError(
                "url_or_client", "must be a redis:// URL or a redis.asyncio client"
            )
        if not isinstance(prefix, str):
            raise ValidationError("prefix", "must be a string")
        self.prefix = prefix
        self._scripts: dict[str, AsyncScript] = {
            name: self._client.register_script(source)
            for name, source in (
                ("claim", _CLAIM),
                ("complete", _COMPLETE),
                ("release", _RELEASE),
                ("renew", _RENEW),
            )
        }

    def _keys(self, key: str) -> list[str]:
        base = f"{self.prefix}{{{key}}}"
        return [f"{base}:claim", f"{base}:done"]

    async def _call(self, script: str, key: str, *args: str | int) -> int:
        return int(await self._scripts[script](keys=self._keys(key), args=list(args)))

    async def _claim(self, key: str, token: str) -> Claim:
        result = await self._call("claim", key, token, _ms(self.lease))
        return {1: Claim.CLAIMED, 2: Claim.DONE}.get(result, Claim.HELD)

    async def _complete(self, key: str, token: str) -> bool:
        return await self._call("complete", key, token, _ms(self.retention)) == 1

    async def _release(self, key: str, token: str) -> None:
        await self._call("release", key, token)

    async def _renew(self, key: str, token: str) -> bool:
        return await self._call("renew", key, token, _ms(self.lease)) == 1

    async def aclose(self) -> None:
        """Close the client if this inbox created it from a URL."""
        if self._owned:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"RedisInbox(prefix={self.prefix!r}, lease={self.lease})"


def _is_async_client(obj: object) -> bool:
    """A ``redis.asyncio`` client (or lookalike): scripts, and commands that are coroutines."""
    return callable(getattr(obj, "register_script", None)) and is_async_callable(
        getattr(obj, "execute_command", None)
    )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
