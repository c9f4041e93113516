"""Ratios of timings taken side by side: references and ours round by round in one test.

On a shared machine the load drifts from one test to the next, so timings taken in separate
tests do not compare; interleaving the rounds and taking each one's fastest run does.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved_ratios(
    benchmark,
    ours: Callable[[], object],
    references: dict[str, Callable[[], object]],
    *,
    rounds: int = 5,
    group: str = "",
) -> dict[str, float]:
    """Benchmark ``ours`` with pytest-benchmark, running every reference just before each of
    its rounds, and return min(ours) / min(reference) per reference (load only adds time).

    Args:
        benchmark: the pytest-benchmark fixture.
        ours: what is measured (pytest-benchmark's statistics are its timings).
        references: name -> a run to compare with (floor, peer), timed here.
        rounds: measured rounds (one warm-up round of everything comes first).
        group: the pytest-benchmark group name.

    Returns:
        {"ours / <name>": ratio} for every reference.
    """
    timings: dict[str, list[float]] = {name: [] for name in references}

    def run_references() -> None:
        for name, reference in references.items():
            started = time.perf_counter()
            reference()
            timings[name].append(time.perf_counter() - started)

    for reference in references.values():  # warm-up, untimed
        reference()
    benchmark.group = group
    benchmark.pedantic(ours, setup=run_references, rounds=rounds, iterations=1, warmup_rounds=1)
    ours_min = benchmark.stats.stats.min
    ratios = {f"ours / {name}": ours_min / min(times) for name, times in timings.items()}
    benchmark.extra_info.update(ratios)
    print(f"\n{group}: " + ", ".join(f"{k} = {v:.3f}" for k, v in ratios.items()))
    return ratios
