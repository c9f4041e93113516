"""Fixtures for the explain tests: a small trained digits CNN, and one thread per test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

# The attack tests' split of scikit-learn's digits (cheap: no training), so both suites
# look at the same images.
from tests.attacks.conftest import digits_split
from tests.digits_training import train_digits_cnn

__all__ = ["digits_cnn", "digits_split"]


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """One intra-op thread: the tiny models here run fastest so on a busy 2-core machine."""


@pytest.fixture(scope="session")
def digits_cnn(digits_split: dict[str, torch.Tensor]) -> nn.Module:
    """The attack tests' DigitsCNN, trained the same seeded way but for 5 epochs, not 15
    (~96% test accuracy, a third of the time), on one thread; returned in eval mode."""
    return train_digits_cnn(digits_split, epochs=5, one_thread=True)
