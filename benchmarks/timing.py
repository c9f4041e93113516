"""Ratios of timings taken side by side: references and ours round by round in one test.

On a shared machine the load drifts, within a test as well as between tests. Each round runs
every reference immediately before ours, so the two timings of a round see the same load;
the ratio reported is the median over rounds of those paired ratios, which a slow spell
during a few rounds does not move (a ratio of the two minima does: it pairs timings from
different moments).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_ratios(
    benchmark,
    ours: Callable[[], object],
    references: dict[str, Callable[[], object]],
    *,
    rounds: int = 7,
    group: str = "",
) -> dict[str, float]:
    """Benchmark ``ours`` with pytest-benchmark, running every reference just before each of
    its rounds, and return the median paired ratio ours_i / reference_i per reference.

    Args:
        benchmark: the pytest-benchmark fixture.
        ours: what is measured (pytest-benchmark's statistics are its timings).
        references: name -> a run to compare with (floor, peer), timed here.
        rounds: measured rounds (one warm-up round of everything comes first).
        group: the pytest-benchmark group name.

    Returns:
        {"ours / <name>": ratio} for every reference; the spread of the paired ratios
        (min and max) goes to the benchmark's extra_info and the printed line.
    """
    timings: dict[str, list[float]] = {name: [] for name in references}

    def run_references() -> None:
        for name, reference in references.items():
            started = time.perf_counter()
            reference()
            timings[name].append(time.perf_counter() - started)

    benchmark.group = group
    # pedantic calls the setup before the warm-up round too: the references warm up with it.
    benchmark.pedantic(ours, setup=run_references, rounds=rounds, iterations=1, warmup_rounds=1)
    ours_times = list(benchmark.stats.stats.data)
    ratios, spread = {}, {}
    for name, times in timings.items():
        paired = [o / r for o, r in zip(ours_times, times[-len(ours_times) :], strict=True)]
        ratios[f"ours / {name}"] = statistics.median(paired)
        spread[f"ours / {name}"] = (min(paired), max(paired))
    benchmark.extra_info.update(ratios)
    benchmark.extra_info.update({f"{k} (min, max)": v for k, v in spread.items()})
    print(
        f"\n{group}: "
        + ", ".join(
            f"{k} = {v:.3f} (rounds {spread[k][0]:.3f}..{spread[k][1]:.3f})"
            for k, v in ratios.items()
        )
    )
    return ratios
