"""Selective prediction: risk-coverage curves and the area under them (AURC)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._validation import as_tensor, check_binary, check_confidence
from ._inputs import mean_probs, top_label


class RiskCoverage(NamedTuple):
    """A risk-coverage curve, one point per distinct confidence threshold (high to low).

    Attributes:
        coverage: (P,) float64 fraction of samples kept, increasing to 1.
        risk: (P,) float64 error rate among the kept samples.
    """

    coverage: Tensor
    risk: Tensor


def _confidence_correct(prediction: Any, target: Any) -> tuple[Tensor, Tensor]:
    """Accept (confidence (N,), correct (N,)) or (probs (B, K) / (S, B, K), labels (B,))."""
    prediction = as_tensor(prediction, "prediction")
    if prediction.ndim == 1:
        confidence = check_confidence(prediction, "prediction")
        return confidence, check_binary(target, "target", len(confidence)).to(confidence.device)
    if prediction.ndim in (2, 3):
        return top_label(*mean_probs(prediction, target, names=("prediction", "target")))
    raise ValueError(
        "prediction must be confidences (N,) with target = correct (N,), or probabilities "
        f"(B, K) / (S, B, K) with target = labels (B,); got shape {tuple(prediction.shape)}"
    )


def risk_coverage(prediction: Tensor, target: Tensor) -> RiskCoverage:
    """Risk-coverage curve: keep the most confident samples, report the error rate among them.

    Samples with equal confidence cannot be separated by a threshold, so they enter together:
    the curve has one point per distinct confidence, which makes it independent of input order.

    Args:
        prediction: (N,) top-label confidences, or (B, K) probabilities / (S, B, K) samples.
        target: (N,) bool correctness for confidences, or (B,) integer labels for probabilities.

    Returns:
        RiskCoverage(coverage (P,), risk (P,)), float64 on the CPU, P = number of distinct
        confidences.
    """
    confidence, correct = _confidence_correct(prediction, target)
    order = torch.argsort(confidence, descending=True, stable=True)
    confidence, errors = confidence[order].cpu(), (~correct[order]).double().cpu()
    n = len(confidence)
    kept = torch.arange(1, n + 1, dtype=torch.float64)
    cumulative_errors = errors.cumsum(0)
    # The last position of each run of equal confidences is where a threshold can sit.
    last_of_run = torch.ones(n, dtype=torch.bool)
    last_of_run[:-1] = confidence[1:] != confidence[:-1]
    return RiskCoverage(
        coverage=kept[last_of_run] / n,
        risk=cumulative_errors[last_of_run] / kept[last_of_run],
    )


def aurc(prediction: Tensor, target: Tensor) -> float:
    """Area under the risk-coverage curve (Geifman et al. 2019); lower is better.

    Each point's risk is held over the coverage it adds (a step integral), which equals
    mean_k risk(top k) when all confidences differ.

    Args:
        prediction: (N,) top-label confidences, or (B, K) probabilities / (S, B, K) samples.
        target: (N,) bool correctness for confidences, or (B,) integer labels for probabilities.

    Returns:
        AURC in [0, 1].
    """
    curve = risk_coverage(prediction, target)
    widths = torch.diff(curve.coverage, prepend=torch.zeros(1, dtype=torch.float64))
    return float((curve.risk * widths).sum())
