"""Fixtures for the explain tests: a small trained digits CNN, and one thread per test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

# The attack tests' split of scikit-learn's digits (cheap: no training), so both suites
# look at the same images.
from tests.attacks.conftest import digits_split
from tests.attacks.models import DigitsCNN

__all__ = ["digits_cnn", "digits_split"]


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """One intra-op thread: the tiny models here run fastest so on a busy 2-core machine."""


@pytest.fixture(scope="session")
def digits_cnn(digits_split: dict[str, torch.Tensor]) -> nn.Module:
    """The attack tests' DigitsCNN, trained the same seeded way but for 5 epochs, not 15
    (~96% test accuracy, a third of the time), on one thread; returned in eval mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # session fixtures set up before the per-test one_thread
    try:
        torch.manual_seed(0)
        model = DigitsCNN()
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = digits_split["x_train"], digits_split["y_train"]
        generator = torch.Generator().manual_seed(1)
        for _ in range(5):
            for batch in torch.randperm(len(x), generator=generator).split(64):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    for parameter in model.parameters():
        parameter.grad = None
    return model
