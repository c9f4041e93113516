"""On a trained digits CNN, stronger corruptions cost more accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.shifts import CORRUPTIONS, corrupt

FAMILIES = {
    "noise": ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"],
    "blur": ["gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur"],
    "contrast": ["contrast"],
}
# 360 test digits: a drop of 0.1 is 36 more errors, far beyond what another float rounding
# of the model (or of the corruption) could move.
MARGIN = 0.1


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).double().mean())


def test_the_family_lists_match_the_registry() -> None:
    for family in ("noise", "blur"):
        registered = {n for n in CORRUPTIONS if CORRUPTIONS.metadata(n)["family"] == family}
        assert set(FAMILIES[family]) <= registered


@pytest.mark.parametrize("family", list(FAMILIES))
def test_accuracy_falls_from_severity_1_to_5(
    digits_model: nn.Module, digits_split: dict[str, torch.Tensor], family: str
) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    indices = torch.arange(len(x))
    clean = _accuracy(digits_model, x, y)
    mild = [
        _accuracy(digits_model, corrupt(x, name, 1, indices=indices), y)
        for name in FAMILIES[family]
    ]
    severe = [
        _accuracy(digits_model, corrupt(x, name, 5, indices=indices), y)
        for name in FAMILIES[family]
    ]
    mean_mild, mean_severe = sum(mild) / len(mild), sum(severe) / len(severe)
    assert clean > 0.9
    assert mean_severe < mean_mild - MARGIN, (mild, severe)
    assert mean_severe < clean - MARGIN
