"""Shared fixtures for the attack tests: the digits split and a small trained CNN."""

from __future__ import annotations

import copy

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from tests.digits_training import train_digits_cnn


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    return x, y


@pytest.fixture(scope="session")
def digits_split() -> dict[str, torch.Tensor]:
    """A fixed split of scikit-learn's digits: 1,437 train and 360 test images in [0, 1]."""
    x, y = _digits()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:1437], order[1437:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


@pytest.fixture(scope="session")
def digits_model(digits_split: dict[str, torch.Tensor]) -> nn.Module:
    """DigitsCNN trained for a few epochs (deterministic), returned in eval mode."""
    return train_digits_cnn(digits_split, epochs=15, one_thread=False)


@pytest.fixture(scope="session")
def digits_model64(digits_model: nn.Module) -> nn.Module:
    """digits_model in float64, for comparisons that float32 rounding would blur: half the
    test digits have a float32 CE loss under 1e-4, where p_y rounds to within a few ulps of 1
    and the sign of each input-gradient coordinate is rounding noise."""
    return copy.deepcopy(digits_model).double()


@pytest.fixture(scope="session")
def digits_split64(digits_split: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """digits_split with float64 images."""
    return {k: v.double() if v.is_floating_point() else v for k, v in digits_split.items()}
