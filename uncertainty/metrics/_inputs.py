"""Turn the metrics' public arguments into checked float64 tensors (one place, one rule)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import check_labels, check_probs


def mean_probs(
    probs: Any, y: Any, names: tuple[str, str] = ("probs", "y")
) -> tuple[Tensor, Tensor]:
    """Check a prediction and its labels; average samples first.

    Metrics run in float64 whatever the input dtype, so float32 and float64 inputs give the same
    numbers up to the input's own rounding, and sums over many samples do not drift.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples of them.
        y: (B,) integer labels in [0, K).
        names: the two arguments' names in the caller, for error messages.

    Returns:
        (mean probabilities (B, K) float64, labels (B,) int64 on the same device).
    """
    probs = check_probs(probs, names[0])
    y = check_labels(y, probs.shape[-1], probs.shape[-2], names[1])
    p = probs.detach().double()
    if p.ndim == 3:
        p = p.mean(dim=0)
    return p, y.to(device=p.device, dtype=torch.int64)


def top_label(p: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence and correctness of mean probabilities.

    Args:
        p: (B, K) float64 mean probabilities (from `mean_probs`).
        y: (B,) int64 labels.

    Returns:
        (confidence (B,) float64, correct (B,) bool). Ties go to the lowest class index, as
        torch.argmax and numpy.argmax.
    """
    confidence, predicted = p.max(dim=-1)
    return confidence, predicted == y
