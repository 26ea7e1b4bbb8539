"""The row type every benchmark returns, and the table printer."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable

import attrs

__all__ = ["Row", "machine", "main_with_quick", "print_rows"]


@attrs.frozen(kw_only=True)
class Row:
    benchmark: str
    metric: str
    value: float
    unit: str
    #: what ``ratio`` compares against (a metric measured in the same run), if anything
    ratio_to: str = ""
    ratio: float | None = None


def machine() -> str:
    import os

    return (
        f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()} {platform.release()}, "
        f"Python {sys.version.split()[0]}"
    )


def print_rows(rows: Iterable[Row]) -> None:
    rows = list(rows)
    widths = [
        max(len("benchmark"), *(len(r.benchmark) for r in rows)) if rows else 9,
        max(len("metric"), *(len(r.metric) for r in rows)) if rows else 6,
    ]
    header = (
        f"{'benchmark':<{widths[0]}}  {'metric':<{widths[1]}}  {'value':>12}  {'unit':<8}  ratio"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r.ratio:.2f}x {r.ratio_to}" if r.ratio is not None else ""
        print(
            f"{r.benchmark:<{widths[0]}}  {r.metric:<{widths[1]}}  {r.value:>12.1f}  "
            f"{r.unit:<8}  {ratio}"
        )


def main_with_quick(module: str, run: Callable[..., list[Row]], quick_help: str) -> None:
    """The command line of a benchmark whose only option is ``--quick``: run it, print its rows."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    rows = run(quick=args.quick)
    print(machine())
    print_rows(rows)
