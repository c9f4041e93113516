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
from sklearn.datasets import load_digits
from torch import nn

from attacks import pgd

BATCH, STEPS = 512, 10
EPS_TYPICAL, EPS_LARGE = 0.05, 0.3
ROUNDS = 5
timings: dict[str, float] = {}


class SmallCNN(nn.Module):
    """A small CNN for 1x28x28 inputs (~100k parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Real digits upsampled to 28x28, a briefly trained CNN, labels = its clean predictions."""
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images[:BATCH], dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=28, mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.tensor(digits.target[:BATCH])
    model = SmallCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)  # every sample starts correctly classified
    return model, x, y


def _floor(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for _ in range(STEPS):
        x_in = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_in), y), x_in)
    return grad


def _run(benchmark, name: str, fn) -> None:
    benchmark.group = "pgd-10, batch 512, CPU"
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    timings[name] = benchmark.stats.stats.min


def test_floor(benchmark, setup) -> None:
    model, x, y = setup
    _run(benchmark, "floor", lambda: _floor(model, x, y))


def test_torchattacks_pgd(benchmark, setup) -> None:
    model, x, y = setup
    attack = torchattacks.PGD(model, eps=EPS_TYPICAL, alpha=2.5 * EPS_TYPICAL / STEPS, steps=STEPS)
    _run(benchmark, "torchattacks", lambda: attack(x, y))


def test_ours_pgd(benchmark, setup) -> None:
    model, x, y = setup
    _run(benchmark, "ours", lambda: pgd(model, x, y, EPS_TYPICAL, steps=STEPS))


def test_ours_pgd_early_stop_large_eps(benchmark, setup) -> None:
    model, x, y = setup
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
