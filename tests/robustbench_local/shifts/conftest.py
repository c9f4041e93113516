"""Fixtures for the shift tests: gray digits, natural colour patches, a trained digits CNN."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as tvf
from sklearn.datasets import load_sample_images
from torch import nn

# The attack tests' split of scikit-learn's digits (cheap: no training), so the suites look
# at the same images.
from tests.attacks.conftest import digits_split
from tests.digits_training import train_digits_cnn

__all__ = ["colour32", "digits_model", "digits_split", "gray8"]


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """One intra-op thread (tests/conftest.py says why)."""


@pytest.fixture(scope="session")
def gray8(digits_split: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eight test digits, (8, 1, 8, 8) float32 in [0, 1]."""
    return digits_split["x_test"][:8].clone()


@pytest.fixture(scope="session")
def colour32() -> torch.Tensor:
    """Eight natural colour images, (8, 3, 32, 32) float32 in [0, 1]: fixed 128x128 crops of
    scikit-learn's two sample photos, downsized. Natural images, not noise, so that a blur
    or a pixelation changes them more at higher severity, as it does real data."""
    photos = [torch.tensor(image).permute(2, 0, 1) for image in load_sample_images().images]
    crops = [
        tvf.resize(photo[:, top : top + 128, left : left + 128], [32, 32], antialias=True)
        for photo in photos
        for top, left in ((0, 0), (150, 200), (290, 400), (100, 500))
    ]
    return torch.stack(crops).float() / 255.0


@pytest.fixture(scope="session")
def digits_model(digits_split: dict[str, torch.Tensor]) -> nn.Module:
    """The attack tests' DigitsCNN trained the same seeded way for 8 epochs (about 97% test
    accuracy), on one thread; returned in eval mode."""
    return train_digits_cnn(digits_split, epochs=8, one_thread=True)
