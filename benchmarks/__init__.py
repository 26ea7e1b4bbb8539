"""Runnable benchmarks; ``python -m benchmarks`` runs them all and prints one table.

Each ``benchmarks/bench_*.py`` module exposes ``run(quick: bool = False) -> list[Row]`` and can
be run on its own (``python -m benchmarks.bench_x``). Ratios are always taken between figures
measured in the same run: these machines are noisy, absolute numbers are not comparable.
"""
