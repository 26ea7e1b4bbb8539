"""The ``wxpay-async`` command.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``
(async work is started by the module itself); this file only dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["COMMANDS", "at_least_one", "main", "non_negative_seconds", "positive_seconds"]


def at_least_one(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1 (a bad one exits 2 with a usage line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {text!r}")
    return value


def _seconds(text: str, *, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        rule = ">= 0" if zero_ok else "> 0"
        raise argparse.ArgumentTypeError(f"expected a finite number {rule}, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds > 0."""
    return _seconds(text, zero_ok=False)


def non_negative_seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds >= 0."""
    return _seconds(text, zero_ok=True)


#: name → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("wxpay_async.demo", "run the end-to-end mission against an embedded sandbox"),
    "sandbox": ("wxpay_async.sandbox.cli", "serve a local WeChat Pay sandbox"),
    "onboard": ("wxpay_async.batch_cli", "onboard HK sub-merchants from a JSON Lines file"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command``, only that subcommand's module is imported.

    Each subcommand brings its own dependencies (the sandbox: aiohttp's server and every route;
    ~0.2 s of start-up): ``wxpay-async onboard --processes N`` starts N + 1 interpreters.
    """
    parser = argparse.ArgumentParser(
        prog="wxpay-async",
        description="WeChat Pay authorization and onboarding client (wxpay_async).",
    )
    parser.add_argument("--version", action="version", version=f"wxpay_async {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=help_text, description=help_text)  # listed, not parsed
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command not built into this installation
        parsed = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(parsed)
        parsed.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    result: int = args._run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
