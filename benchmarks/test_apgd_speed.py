"""APGD-20 speed on the small CNN of benchmarks/conftest.py (batch 512, CPU), as ratios in one run.

Reference: our PGD-20, the same loop with a fixed step (its own benchmark holds it to the
floor of 20 forward+backward passes), so the ratio is the cost of APGD's step rule alone:
momentum, the best point and the checkpoint counts. Peer: torchattacks' APGD with the same
eps, steps, loss and one restart (it takes one gradient more; printed, not enforced, as in
test_attack_speed). Target: ours/pgd <= 1.05. Run it on a quiet machine: on a shared one the
spread between rounds is larger than the rule's cost (about 1%).

    .venv/bin/python -m pytest benchmarks/test_apgd_speed.py --benchmark-only -s
"""

from __future__ import annotations

import pytest
import torchattacks

from attacks import apgd, pgd

STEPS, EPS, ROUNDS = 20, 0.05, 3
timings: dict[str, float] = {}


def _run(benchmark, name: str, fn) -> None:
    benchmark.group = "apgd-20, batch 512, CPU"
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    timings[name] = benchmark.stats.stats.min


def test_ours_pgd(benchmark, digits28) -> None:
    model, x, y = digits28
    _run(benchmark, "pgd", lambda: pgd(model, x, y, EPS, steps=STEPS))


def test_torchattacks_apgd(benchmark, digits28) -> None:
    model, x, y = digits28
    attack = torchattacks.APGD(model, eps=EPS, steps=STEPS, loss="ce", n_restarts=1)
    _run(benchmark, "torchattacks", lambda: attack(x, y))


def test_ours_apgd(benchmark, digits28) -> None:
    model, x, y = digits28
    _run(benchmark, "ours", lambda: apgd(model, x, y, EPS, steps=STEPS))


@pytest.fixture(scope="module", autouse=True)
def report_ratios():
    """After the file's benchmarks: print the ratios and check them against the targets."""
    yield
    if {"pgd", "torchattacks", "ours"} - timings.keys():
        return  # a partial run (-k): nothing to compare
    ratios = {
        "ours / pgd": timings["ours"] / timings["pgd"],
        "ours / torchattacks": timings["ours"] / timings["torchattacks"],
    }
    print("\nAPGD-20 ratios (min over rounds):")
    for name, ratio in ratios.items():
        print(f"  {name:24s} {ratio:6.3f}")
    if ratios["ours / pgd"] > 1.05:
        pytest.fail(f"apgd speed targets missed: {ratios}")
