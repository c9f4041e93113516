"""Calibration: reliability bins, ECE, MCE and adaptive (equal-mass) ECE.

Everything goes through one path: bin assignment -> per-bin sums (count, confidence, correct)
-> ReliabilityBins -> ece / mce. The streaming accumulator keeps the same sums, so it gives the
same numbers.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._validation import check_binary, check_confidence, check_n_bins
from ._inputs import mean_probs, top_label


class Binning(str, Enum):
    """How confidences are split into bins."""

    #: n_bins intervals of width 1/n_bins: [0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1] (the last
    #: one closed, so a confidence of exactly 1.0 falls in it).
    EQUAL_WIDTH = "equal_width"
    #: edges at the 0, 1/n, ..., 1 quantiles (linear interpolation, as numpy) of the
    #: confidences, with the outer edges set to 0 and 1: (about) equally many samples per bin.
    EQUAL_MASS = "equal_mass"


class ReliabilityBins(NamedTuple):
    """Per-bin calibration statistics, enough to draw a reliability diagram.

    Attributes:
        edges: (n_bins + 1,) float64 bin edges; bin b is [edges[b], edges[b+1]), the last closed.
        mean_confidence: (n_bins,) float64 mean top-label confidence per bin; NaN where empty.
        accuracy: (n_bins,) float64 fraction correct per bin; NaN where empty.
        count: (n_bins,) int64 number of samples per bin.
    """

    edges: Tensor
    mean_confidence: Tensor
    accuracy: Tensor
    count: Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error: sum_b (count_b / N) |accuracy_b - mean_confidence_b|."""
        filled = self.count > 0
        gaps = (self.accuracy[filled] - self.mean_confidence[filled]).abs()
        return float((self.count[filled].double() * gaps).sum() / self.count.sum())

    @property
    def mce(self) -> float:
        """Maximum calibration error: max over non-empty bins of |accuracy_b - conf_b|."""
        filled = self.count > 0
        return float((self.accuracy[filled] - self.mean_confidence[filled]).abs().max())


def equal_width_edges(n_bins: int) -> Tensor:
    """(n_bins + 1,) float64 edges 0, 1/n_bins, ..., 1 (on the CPU)."""
    return torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64)


def _equal_mass_edges(confidence: Tensor, n_bins: int) -> Tensor:
    # Hand-rolled quantiles (numpy's "linear" rule): torch.quantile caps its input at 2**24.
    values = confidence.sort().values.cpu()
    positions = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64) * (len(values) - 1)
    low = positions.floor().long()
    high = positions.ceil().long()
    edges = values[low] + (positions - low.double()) * (values[high] - values[low])
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def bin_sums(confidence: Tensor, correct: Tensor, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin sums, the sufficient statistics of every calibration number here.

    Args:
        confidence: (N,) float64 confidences.
        correct: (N,) bool.
        edges: (n_bins + 1,) float64 increasing edges; values below edges[1] go to bin 0 and
            values at or above edges[-2] go to the last bin.

    Returns:
        (count (n_bins,) int64, confidence sum (n_bins,) float64, correct count (n_bins,)
        float64), on the CPU.
    """
    n_bins = len(edges) - 1
    # right=True: a value equal to an edge starts the next bin ([lo, hi)), as numpy.histogram and
    # torchmetrics; the clamp then puts 1.0 in the last bin instead of an extra one (the
    # torchmetrics quirk, issue #3510).
    confidence = confidence.contiguous()  # a column of a stored table may be strided
    index = torch.bucketize(confidence, edges.to(confidence.device), right=True) - 1
    index = index.clamp_(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = torch.bincount(index, weights=correct.double(), minlength=n_bins)
    return count.cpu(), conf_sum.cpu(), correct_sum.cpu()


def bins_from_sums(
    edges: Tensor, count: Tensor, conf_sum: Tensor, correct_sum: Tensor
) -> ReliabilityBins:
    """Turn per-bin sums into a ReliabilityBins (means, NaN in empty bins).

    Args:
        edges: (n_bins + 1,) float64.
        count: (n_bins,) int64.
        conf_sum: (n_bins,) float64.
        correct_sum: (n_bins,) float64.

    Returns:
        The ReliabilityBins.
    """
    denominator = count.double()
    # 0 / 0 = NaN marks an empty bin for the plot; ece / mce skip those bins.
    return ReliabilityBins(
        edges=edges.double().cpu(),
        mean_confidence=conf_sum / denominator,
        accuracy=correct_sum / denominator,
        count=count,
    )


def confidence_and_correct(probs: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence and correctness: the per-sample numbers a store keeps for plots.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.

    Returns:
        (confidence (B,) float64 = max_k mean p_k, correct (B,) bool = argmax == y).
    """
    return top_label(*mean_probs(probs, y))


def reliability_bins(
    confidence: Tensor,
    correct: Tensor,
    n_bins: int = 15,
    binning: Binning | str = Binning.EQUAL_WIDTH,
) -> ReliabilityBins:
    """Bin top-label confidences and report mean confidence, accuracy and count per bin.

    Takes stored per-sample numbers, so a report can draw reliability diagrams without a model.

    Args:
        confidence: (N,) top-label confidences in [0, 1].
        correct: (N,) bool (or 0/1), whether the top label was right.
        n_bins: number of bins, >= 1.
        binning: "equal_width" (default) or "equal_mass".

    Returns:
        ReliabilityBins(edges (n_bins+1,), mean_confidence (n_bins,), accuracy (n_bins,),
        count (n_bins,)); its `.ece` and `.mce` are the calibration errors.
    """
    n_bins = check_n_bins(n_bins)
    binning = _check_binning(binning)
    confidence = check_confidence(confidence)
    correct = check_binary(correct, "correct", len(confidence)).to(confidence.device)
    if binning is Binning.EQUAL_WIDTH:
        edges = equal_width_edges(n_bins)
    else:
        edges = _equal_mass_edges(confidence, n_bins)
    return bins_from_sums(edges, *bin_sums(confidence, correct, edges))


def _check_binning(binning: Any) -> Binning:
    try:
        return Binning(binning)
    except ValueError:
        choices = ", ".join(repr(b.value) for b in Binning)
        raise ValueError(f"binning must be one of {choices}; got {binning!r}") from None


def _bins_of(probs: Tensor, y: Tensor, n_bins: int, binning: Binning) -> ReliabilityBins:
    n_bins = check_n_bins(n_bins)
    confidence, correct = confidence_and_correct(probs, y)
    return reliability_bins(confidence, correct, n_bins, binning)


def ece(probs: Tensor, y: Tensor, n_bins: int = 15) -> float:
    """Expected calibration error, top label, equal-width bins.

    Equals torchmetrics' `multiclass_calibration_error(probs, y, K, n_bins, norm="l1")` except
    that a confidence of exactly 1.0 counts in the last bin here (torchmetrics #3510).

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.
        n_bins: number of bins, >= 1.

    Returns:
        ECE in [0, 1].
    """
    return _bins_of(probs, y, n_bins, Binning.EQUAL_WIDTH).ece


def mce(probs: Tensor, y: Tensor, n_bins: int = 15) -> float:
    """Maximum calibration error over non-empty equal-width bins, top label.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.
        n_bins: number of bins, >= 1.

    Returns:
        MCE in [0, 1].
    """
    return _bins_of(probs, y, n_bins, Binning.EQUAL_WIDTH).mce


def adaptive_ece(probs: Tensor, y: Tensor, n_bins: int = 15) -> float:
    """ECE over equal-mass bins (edges at confidence quantiles), top label.

    Matches netcal's `ECE(bins, equal_intervals=False)`. Not available in streaming form: the
    edges depend on all confidences.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.
        n_bins: number of bins, >= 1.

    Returns:
        Adaptive ECE in [0, 1].
    """
    return _bins_of(probs, y, n_bins, Binning.EQUAL_MASS).ece
