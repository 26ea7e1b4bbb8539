"""A faithful local WeChat Pay for tests, demos and development.

``Sandbox`` serves every endpoint of the authorization and onboarding family on one port,
verifies request signatures as WeChat does, signs every answer, keeps state so reads reflect
writes, honours ``Idempotency-Key``, sends encrypted and signed notifications on WeChat's retry
schedules, and injects faults on demand::

    from wxpay_async.sandbox import Sandbox

    async with Sandbox.start(key_mode="certificate", time_scale=0.001) as sb:
        sb.faults.queue("POST /hk/v3/merchants", "drop_after")
        async with sb.client() as client:
            ...

It is not a mock of this library's client: its checks are written from the protocol spec.
"""

from ._core import Options, RecordedRequest
from ._faults import FAULT_KINDS, NOTIFICATION_FAULTS, Faults
from ._identity import SANDBOX_MCHID, Identity
from ._notify import Delivery
from ._sandbox import DEFAULT_SP_APPID, DEFAULT_SUB_MCHID, Sandbox
from ._state import SandboxState

__all__ = [
    "DEFAULT_SP_APPID",
    "DEFAULT_SUB_MCHID",
    "FAULT_KINDS",
    "NOTIFICATION_FAULTS",
    "SANDBOX_MCHID",
    "Delivery",
    "Faults",
    "Identity",
    "Options",
    "RecordedRequest",
    "Sandbox",
    "SandboxState",
]
