"""Shared fixtures for the uncertainty tests: small models and random probabilities."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    # Every uncertainty test runs on one thread (tests/conftest.py says why).
    return None


def _small_cnn(
    num_classes: int = 10, dropout: float = 0.3, feature_dropout: float = 0.2, seed: int = 0
) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout2d(feature_dropout),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 32),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(32, num_classes),
    )
    # Non-trivial running statistics, so that "BatchNorm in eval" is observable.
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture
def small_cnn() -> Callable[..., nn.Module]:
    """Factory: a CIFAR-like (3x8x8) CNN with BatchNorm, Dropout2d and Dropout."""
    return _small_cnn


@pytest.fixture
def random_probs() -> Callable[..., torch.Tensor]:
    """Factory: random probability tensors of a given shape (softmax of scaled normals)."""

    def make(
        *shape: int, seed: int = 0, scale: float = 3.0, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        logits = torch.randn(*shape, generator=generator, dtype=dtype) * scale
        return logits.softmax(dim=-1)

    return make


@pytest.fixture
def random_labels() -> Callable[..., torch.Tensor]:
    """Factory: random integer labels."""

    def make(n: int, num_classes: int, seed: int = 1) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return torch.randint(0, num_classes, (n,), generator=generator)

    return make
