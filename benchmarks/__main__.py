"""Run every ``bench_*`` module and print one table (``python -m benchmarks [--quick]``)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
from pathlib import Path

from ._table import Row, machine, print_rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller N, for a smoke run")
    parser.add_argument("only", nargs="*", help="bench module names (default: all)")
    args = parser.parse_args()
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_") and (not args.only or m.name in args.only)
    )
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"... {name}", flush=True)
        rows.extend(module.run(quick=args.quick))
    print()
    print(f"{machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    print_rows(rows)


if __name__ == "__main__":
    main()
