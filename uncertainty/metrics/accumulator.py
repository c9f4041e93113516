"""Streaming metrics: aggregate batch by batch, with the same helpers as the functions."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_n_bins, check_positive_int
from ._inputs import mean_probs, top_label
from .calibration import bin_sums, bins_from_sums, equal_width_edges
from .scoring import brier_terms, nll_terms


class MetricAccumulator:
    """Accumulates the sufficient statistics of accuracy, NLL, Brier, ECE and MCE.

    `compute()` after `update` on batches gives the same numbers as the functions in
    `uncertainty.metrics` on the concatenated data (up to float64 summation order, ~1e-15
    relative). Metrics that need all samples at once (adaptive ECE, AURC, AUROC, the Brier
    decomposition) are not here; store per-sample numbers for those.

    Args:
        num_classes: K; every update must have K classes.
        n_bins: equal-width calibration bins, >= 1.

    Example:
        >>> acc = MetricAccumulator(num_classes=10)
        >>> for x, y in loader:
        ...     acc.update(sample_probs(model, x), y)
        >>> acc.compute()["ece"]
    """

    def __init__(self, num_classes: int, n_bins: int = 15) -> None:
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.n_bins = check_n_bins(n_bins)
        self._edges = equal_width_edges(self.n_bins)
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.count = 0
        self._correct = 0
        self._nll_sum = torch.zeros((), dtype=torch.float64)
        self._brier_sum = torch.zeros((), dtype=torch.float64)
        self._bin_count = torch.zeros(self.n_bins, dtype=torch.int64)
        self._bin_conf = torch.zeros(self.n_bins, dtype=torch.float64)
        self._bin_correct = torch.zeros(self.n_bins, dtype=torch.float64)

    def update(self, probs: Tensor, y: Tensor) -> None:
        """Add one batch.

        Args:
            probs: (B, K) probabilities or (S, B, K) samples (averaged first).
            y: (B,) integer labels.
        """
        p, labels = mean_probs(probs, y)
        if p.shape[-1] != self.num_classes:
            raise ValueError(
                f"probs must have num_classes={self.num_classes} entries in its last dim; "
                f"got {p.shape[-1]}"
            )
        confidence, correct = top_label(p, labels)
        count, conf_sum, correct_sum = bin_sums(confidence, correct, self._edges)
        self.count += len(labels)
        self._correct += int(correct.sum())
        self._nll_sum += nll_terms(p, labels).sum().cpu()
        self._brier_sum += brier_terms(p, labels).sum().cpu()
        self._bin_count += count
        self._bin_conf += conf_sum
        self._bin_correct += correct_sum

    def compute(self) -> dict[str, float]:
        """The metrics over everything seen since construction or `reset`.

        Returns:
            {"accuracy", "nll", "brier", "ece", "mce", "count"} (count as a float, the number of
            samples).
        """
        if self.count == 0:
            raise ValueError("MetricAccumulator.compute() needs at least one update; got none")
        bins = bins_from_sums(self._edges, self._bin_count, self._bin_conf, self._bin_correct)
        return {
            "accuracy": self._correct / self.count,
            "nll": float(self._nll_sum / self.count),
            "brier": float(self._brier_sum / self.count),
            "ece": bins.ece,
            "mce": bins.mce,
            "count": float(self.count),
        }
