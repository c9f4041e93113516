"""Benchmarks run with `make bench` (pytest-benchmark); they are not part of the CI tests.

Shared here: the thread count, and the small 28x28 CNN with its batch of 512 real digits.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

BATCH = 512


@pytest.fixture(autouse=True)
def _fixed_threads():
    # The same thread count for every timing in a run, so ratios compare like with like.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


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
def digits28() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
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
