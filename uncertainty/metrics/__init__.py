"""Calibration, scoring, selective-prediction and detection metrics.

Every function takes (B, K) probabilities or (S, B, K) samples (averaged first), in the order
(prediction, target) as torchmetrics, computes in float64 and returns a Python float (curves
and bins come back as tensors). Bad input raises ValueError / TypeError naming the argument.
"""

from .accumulator import MetricAccumulator
from .calibration import (
    Binning,
    ReliabilityBins,
    adaptive_ece,
    confidence_and_correct,
    ece,
    mce,
    reliability_bins,
)
from .detection import aupr, auroc, fpr_at_95_tpr, fpr_at_tpr
from .scoring import BrierDecomposition, accuracy, brier, brier_decomposition, nll
from .selective import RiskCoverage, aurc, risk_coverage

__all__ = [
    "Binning",
    "BrierDecomposition",
    "MetricAccumulator",
    "ReliabilityBins",
    "RiskCoverage",
    "accuracy",
    "adaptive_ece",
    "aupr",
    "aurc",
    "auroc",
    "brier",
    "brier_decomposition",
    "confidence_and_correct",
    "ece",
    "fpr_at_95_tpr",
    "fpr_at_tpr",
    "mce",
    "nll",
    "reliability_bins",
    "risk_coverage",
]
