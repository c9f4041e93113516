"""PGD-10 speed on a small CNN (batch 512, CPU), as ratios within one run.

Floor: 10 forward+backward passes for the input gradient on the same batch, which is the
work any PGD-10 must do. Peer: torchattacks' PGD with the same eps, steps and step size.
Targets (issue 2): ours/floor <= 1.10 and ours/torchattacks <= 1.0 without early stop;
with early stop at an eps that fools most samples, well under the floor.

    .venv/bin/python -m pytest benchmarks/test_attack_speed.py --benchmark-only -s
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from attacks import pgd

STEPS = 10
EPS_TYPICAL, EPS_LARGE = 0.05, 0.3
ROUNDS = 5
timings: dict[str, float] = {}


def _floor(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for _ in range(STEPS):
        x_in = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_in), y), x_in)
    return grad


def _run(benchmark, name: str, fn) -> None:
    benchmark.group = "pgd-10, batch 512, CPU"
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    timings[name] = benchmark.stats.stats.min


def test_floor(benchmark, digits28) -> None:
    model, x, y = digits28
    _run(benchmark, "floor", lambda: _floor(model, x, y))


def test_torchattacks_pgd(benchmark, digits28) -> None:
    model, x, y = digits28
    attack = torchattacks.PGD(model, eps=EPS_TYPICAL, alpha=2.5 * EPS_TYPICAL / STEPS, steps=STEPS)
    _run(benchmark, "torchattacks", lambda: attack(x, y))


def test_ours_pgd(benchmark, digits28) -> None:
    model, x, y = digits28
    _run(benchmark, "ours", lambda: pgd(model, x, y, EPS_TYPICAL, steps=STEPS))


def test_ours_pgd_early_stop_large_eps(benchmark, digits28) -> None:
    model, x, y = digits28
    x_adv = pgd(model, x, y, EPS_LARGE, steps=STEPS)
    with torch.no_grad():
        fooled = float((model(x_adv).argmax(dim=1) != y).float().mean())
    assert fooled > 0.9, f"eps={EPS_LARGE} should fool most samples; fooled {fooled:.2f}"
    _run(
        benchmark,
        "ours_early_stop",
        lambda: pgd(model, x, y, EPS_LARGE, steps=STEPS, early_stop=True),
    )


@pytest.fixture(scope="module", autouse=True)
def report_ratios():
    """After the file's benchmarks: print the ratios and check them against the targets."""
    yield
    if {"floor", "torchattacks", "ours", "ours_early_stop"} - timings.keys():
        return  # a partial run (-k): nothing to compare
    # The fastest round: load on a shared machine only ever adds time.
    ratios = {
        "ours / floor": timings["ours"] / timings["floor"],
        "ours / torchattacks": timings["ours"] / timings["torchattacks"],
        "ours early-stop (eps 0.3) / floor": timings["ours_early_stop"] / timings["floor"],
    }
    print("\nPGD-10 ratios (min over rounds):")
    for name, ratio in ratios.items():
        print(f"  {name:36s} {ratio:6.3f}")
    if ratios["ours / floor"] > 1.10 or ratios["ours early-stop (eps 0.3) / floor"] > 0.6:
        pytest.fail(f"attack speed targets missed: {ratios}")
