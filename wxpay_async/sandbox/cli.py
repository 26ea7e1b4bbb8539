"""``wxpay-async sandbox``: serve a sandbox and write a client identity to a directory.

The directory receives the merchant private key, the WeChat Pay public key, the current
platform certificate and a ``merchant.toml`` that ``wxpay_async.config_file`` (and
``wxpay-async onboard --config``) read. A directory that already holds an identity is reused,
so a restarted sandbox accepts the same client configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from ..cli import non_negative_seconds, positive_seconds
from ._identity import Identity
from ._notify import is_loopback_url
from ._sandbox import Sandbox

__all__ = ["configure", "run", "write_client_config", "write_merchant_toml"]

#: The first line of every ``merchant.toml`` written here: only such a file is ever replaced.
_HEADER = "# Written for a test server (the sandbox, a benchmark): a throwaway identity.\n"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8480, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument(
        "--identity",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory for the merchant keys and merchant.toml (reused if present)",
    )
    parser.add_argument(
        "--key-mode",
        choices=("public_key", "certificate"),
        default="public_key",
        help="how answers are signed and fields encrypted (default public_key)",
    )
    parser.add_argument(
        "--time-scale",
        type=positive_seconds,
        default=1.0,
        help="real seconds per simulated second (0.01: reviews/retries 100x faster)",
    )
    parser.add_argument(
        "--latency", type=non_negative_seconds, default=0.0, help="seconds added to every answer"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for random fault rates")


def _foreign(path: Path) -> bool:
    """Whether ``path`` exists and was not written here (its first line is not ours)."""
    if not path.exists():
        return False
    with path.open("rb") as handle:
        return handle.read(len(_HEADER.encode())) != _HEADER.encode()


def write_merchant_toml(directory: Path, identity: Identity, key_mode: str, url: str) -> Path:
    """The client side of the identity, in the format ``load_merchant_config`` reads."""
    return write_client_config(
        directory,
        mchid=identity.mchid,
        serial_no=identity.merchant_serial,
        apiv3_key=identity.apiv3_key,
        url=url,
        public_key_id=identity.pubkey_id if key_mode == "public_key" else None,
    )


def write_client_config(
    directory: Path,
    *,
    mchid: str,
    serial_no: str,
    apiv3_key: str,
    url: str,
    public_key_id: str | None,
) -> Path:
    """``merchant.toml`` for a test server at ``url``, next to ``merchant_private_key.pem`` (and
    ``wechatpay_public_key.pem`` with ``public_key_id``; certificate trust without)."""
    if public_key_id is not None:
        trust = (
            '[trust]\nmode = "public_key"\n'
            f'public_key_id = "{public_key_id}"\n'
            'public_key_path = "wechatpay_public_key.pem"\n'
        )
    else:
        trust = '[trust]\nmode = "certificate"\n'
    text = (
        _HEADER + f'mchid = "{mchid}"\n'
        f'serial_no = "{serial_no}"\n'
        'private_key_path = "merchant_private_key.pem"\n'
        f'apiv3_key = "{apiv3_key}"\n'
        "\n"
        f"{trust}\n"
        "[hosts]\n"
        f'single = "{url}"\n'
    )
    path = directory / "merchant.toml"
    if _foreign(path):
        raise FileExistsError(f"{path} was not written by wxpay-async; it is left as it is")
    # It holds the APIv3 key inline: owner-readable from the start (a temporary file created
    # with that mode, then renamed over the previous copy, which a restart replaces: the URL
    # may have changed).
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path


async def _serve(args: argparse.Namespace) -> None:
    directory: Path = args.identity
    if Identity.exists(directory):
        identity = Identity.load(directory)
        reused = True
    else:
        identity = Identity.generate(fresh_keys=True)
        identity.save(directory)
        reused = False
    sandbox = await Sandbox.start(
        args.port,
        args.key_mode,
        host=args.host,
        identity=identity,
        latency=args.latency,
        time_scale=args.time_scale,
        seed=args.seed,
    )
    try:
        toml = write_merchant_toml(directory, identity, args.key_mode, sandbox.url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Windows event loops have no signal handlers: there Ctrl-C reaches asyncio.run as
            # KeyboardInterrupt, which stops the sandbox through the same finally block.
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        print(
            f"wxpay_async sandbox listening on {sandbox.url} ({args.key_mode} mode, "
            f"{'reused' if reused else 'new'} identity; client config: {toml})",
            flush=True,
        )
        print(f"control routes: {sandbox.url}/_sandbox/ ; Ctrl-C to stop", flush=True)
        if not is_loopback_url(sandbox.url):
            print(
                "warning: the /_sandbox/ control routes have no authentication; "
                "bind to 127.0.0.1 unless this network is yours alone",
                file=sys.stderr,
                flush=True,
            )
        await stop.wait()
    finally:
        await sandbox.stop()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted: 0 after Ctrl-C/SIGTERM, 1 if the port is taken, 2 on a bad DIR
    or option (nothing written then)."""
    directory: Path = args.identity
    if directory.exists() and not directory.is_dir():
        print(f"--identity {directory} is not a directory", file=sys.stderr)
        return 2
    if not Identity.exists(directory) and (taken := Identity.occupied(directory)):
        print(
            f"--identity {directory} already holds {', '.join(taken)} but no sandbox identity;"
            " choose a new or empty directory (nothing was overwritten)",
            file=sys.stderr,
        )
        return 2
    if _foreign(directory / "merchant.toml"):
        print(
            f"--identity {directory}: merchant.toml was not written by wxpay-async;"
            " it is left as it is (move it away to let the sandbox write its own)",
            file=sys.stderr,
        )
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
