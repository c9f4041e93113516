"""Separating two groups by a score: AUROC, AUPR and FPR at 95% TPR.

For any score meant to flag one group: misclassified vs correct, adversarial vs clean, OOD vs
in-distribution. Higher scores must mean "more likely positive" (use an uncertainty such as
total entropy or 1 - confidence, not the confidence itself). Argument order is
(scores, is_positive), as torchmetrics, not scikit-learn's (y_true, y_score).

When either group is empty the metric is undefined and NaN is returned (not an exception), so
a runner can store it and move on.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._validation import check_binary, check_scores


def _ranked(scores: Any, is_positive: Any) -> tuple[Tensor, Tensor] | None:
    """Checked (scores as dense ranks in [0, 1], labels as int), or None if a group is empty.

    torchmetrics squashes scores outside [0, 1] through a sigmoid, which in float32 merges
    scores above ~17 into ties and changes the result. Dense ranks keep the order and the ties
    exactly and are already in [0, 1], and these metrics depend on the order only.
    """
    scores = check_scores(scores)
    positive = check_binary(is_positive, "is_positive", len(scores)).to(scores.device)
    n_positive = int(positive.sum())
    if n_positive == 0 or n_positive == len(positive):
        return None
    _, rank = torch.unique(scores, sorted=True, return_inverse=True)
    rank = rank.double() / max(int(rank.max()), 1)
    return rank, positive.long()


def auroc(scores: Tensor, is_positive: Tensor) -> float:
    """Area under the ROC curve (ties count one half), via torchmetrics.

    Args:
        scores: (N,) real scores, higher = more likely positive; no NaN.
        is_positive: (N,) bool (or 0/1).

    Returns:
        AUROC in [0, 1]; NaN when all samples are in one group.
    """
    ranked = _ranked(scores, is_positive)
    if ranked is None:
        return math.nan
    # torchmetrics is imported on use: it adds seconds to `import uncertainty` otherwise.
    from torchmetrics.functional.classification import binary_auroc

    return float(binary_auroc(*ranked))


def aupr(scores: Tensor, is_positive: Tensor) -> float:
    """Area under the precision-recall curve as average precision (step-wise, no
    interpolation; scikit-learn's `average_precision_score`), via torchmetrics.

    Args:
        scores: (N,) real scores, higher = more likely positive; no NaN.
        is_positive: (N,) bool (or 0/1).

    Returns:
        AP in [0, 1]; NaN when all samples are in one group.
    """
    ranked = _ranked(scores, is_positive)
    if ranked is None:
        return math.nan
    from torchmetrics.functional.classification import binary_average_precision

    return float(binary_average_precision(*ranked))


def fpr_at_tpr(scores: Tensor, is_positive: Tensor, tpr: float = 0.95) -> float:
    """Smallest false-positive rate of any threshold whose true-positive rate is >= `tpr`.

    Args:
        scores: (N,) real scores, higher = more likely positive; no NaN.
        is_positive: (N,) bool (or 0/1).
        tpr: the true-positive rate to reach, in (0, 1].

    Returns:
        FPR in [0, 1]; NaN when all samples are in one group.
    """
    if isinstance(tpr, bool) or not isinstance(tpr, (int, float)) or not 0 < tpr <= 1:
        raise ValueError(f"tpr must be a number in (0, 1]; got {tpr!r}")
    ranked = _ranked(scores, is_positive)
    if ranked is None:
        return math.nan
    from torchmetrics.functional.classification import binary_roc

    fpr_curve, tpr_curve, _ = binary_roc(*ranked)
    # The ROC runs from the highest threshold down, so both rates only grow along it: the first
    # point that reaches the TPR has the smallest FPR. The small slack absorbs float32 rounding
    # of the torchmetrics rates (19/20 is not exact in binary).
    reached = tpr_curve.double() >= tpr - 1e-6
    return float(fpr_curve[reached][0])


def fpr_at_95_tpr(scores: Tensor, is_positive: Tensor) -> float:
    """FPR at 95% TPR, the usual OOD-detection operating point (see `fpr_at_tpr`).

    Args:
        scores: (N,) real scores, higher = more likely positive; no NaN.
        is_positive: (N,) bool (or 0/1).

    Returns:
        FPR in [0, 1]; NaN when all samples are in one group.
    """
    return fpr_at_tpr(scores, is_positive, 0.95)
