"""Proper scoring rules and accuracy: accuracy, NLL, Brier score and its decomposition."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._inputs import mean_probs, top_label

# A probability of exactly 0 for the true class would make the NLL infinite and poison any
# average; it is clamped to the smallest normal float64 (-log = 708.4 nats) instead.
_TINY = torch.finfo(torch.float64).tiny


def nll_terms(p: Tensor, y: Tensor) -> Tensor:
    """Per-sample negative log-likelihood, -log p_y (nats).

    Args:
        p: (B, K) float64 mean probabilities.
        y: (B,) int64 labels.

    Returns:
        (B,) float64.
    """
    return -torch.log(p.gather(-1, y[:, None]).squeeze(-1).clamp_min(_TINY))


def brier_terms(p: Tensor, y: Tensor) -> Tensor:
    """Per-sample Brier score, sum_k (p_k - onehot_k)^2, in [0, 2].

    Args:
        p: (B, K) float64 mean probabilities.
        y: (B,) int64 labels.

    Returns:
        (B,) float64.
    """
    onehot = torch.nn.functional.one_hot(y, p.shape[-1]).double()
    return ((p - onehot) ** 2).sum(dim=-1)


def accuracy(probs: Tensor, y: Tensor) -> float:
    """Top-1 accuracy of the (mean) prediction.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.

    Returns:
        Accuracy in [0, 1].
    """
    _, correct = top_label(*mean_probs(probs, y))
    return float(correct.double().mean())


def nll(probs: Tensor, y: Tensor) -> float:
    """Mean negative log-likelihood of the labels, in nats (= cross-entropy on log probs).

    A true-class probability of exactly 0 is clamped to 2.2e-308 (a loss of 708.4 nats for that
    sample) rather than giving infinity.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.

    Returns:
        The NLL, >= 0.
    """
    return float(nll_terms(*mean_probs(probs, y)).mean())


def brier(probs: Tensor, y: Tensor) -> float:
    """Mean multi-class Brier score, sum over classes of (p - onehot)^2.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.

    Returns:
        The Brier score in [0, 2]. (TensorFlow Probability's `brier_score` is this minus 1.)
    """
    return float(brier_terms(*mean_probs(probs, y)).mean())


class BrierDecomposition(NamedTuple):
    """Brier score = uncertainty - resolution + reliability + within_group, exactly.

    Predictions are grouped by their argmax class k (weight w_k = share of inputs, mean
    prediction pbar_k, label distribution d_k, overall label frequencies f).

    Attributes:
        reliability: mean_i ||p_i - d_k(i)||^2 >= 0 (TFP's definition: each prediction against
            its group's label distribution), miscalibration; lower is better. It equals
            sum_k w_k ||pbar_k - d_k||^2 plus the spread of predictions within the groups.
        resolution: sum_k w_k ||d_k - f||^2 >= 0, how far the groups' label distributions are
            from the base rate; higher is better.
        uncertainty: 1 - sum_j f_j^2, set by the labels alone.
        within_group: -2 mean_i <p_i - pbar_k(i), onehot_i - d_k(i)>: minus twice the covariance
            of predictions and labels inside each argmax group, which grouping by argmax leaves
            out. It is 0 when predictions are constant within each group and does not vanish
            as N grows (for calibrated predictions it is about minus the within-group spread),
            so it is reported rather than hidden in the other terms.
    """

    reliability: float
    resolution: float
    uncertainty: float
    within_group: float


def _within_group(p: Tensor, y: Tensor) -> float:
    """-2 mean_i <p_i - pbar_k(i), onehot_i - d_k(i)> over argmax groups k.

    The deviations p_i - pbar_k average to 0 within a group, so the d_k part drops out.
    """
    k = p.shape[-1]
    group = p.argmax(dim=-1)
    sums = torch.zeros(k, k, dtype=torch.float64, device=p.device).index_add_(0, group, p)
    sizes = torch.bincount(group, minlength=k).double().clamp_min(1.0)
    deviation = p - (sums / sizes[:, None])[group]
    onehot = torch.nn.functional.one_hot(y, k).double()
    return float(-2.0 * (deviation * onehot).sum(dim=-1).mean())


def _resolution(p: Tensor, y: Tensor) -> float:
    """sum_k w_k ||d_k - pbar||^2 over argmax groups k (weights w_k, label distributions d_k)."""
    k = p.shape[-1]
    confusion = torch.zeros(k, k, dtype=torch.float64, device=p.device)
    confusion.index_put_((p.argmax(dim=-1), y), torch.ones_like(y, dtype=torch.float64), True)
    group_size = confusion.sum(dim=1, keepdim=True)
    weights = group_size.squeeze(1) / len(y)
    label_dist = confusion / group_size.clamp_min(1.0)  # empty groups have weight 0 anyway
    base_rate = confusion.sum(dim=0) / len(y)
    return float((weights * ((label_dist - base_rate[None, :]) ** 2).sum(dim=1)).sum())


def brier_decomposition(probs: Tensor, y: Tensor) -> BrierDecomposition:
    """Decompose the Brier score into reliability, resolution and uncertainty (Bröcker 2009).

    Predictions are grouped by their argmax, as in TensorFlow Probability's
    `tfp.stats.brier_decomposition` (numpy substrate, no TensorFlow needed), which computes the
    reliability and uncertainty terms here. TFP's uncertainty belongs to its shifted Brier score
    (ours minus 1), so 1 is added to it. TFP's resolution is not used: TFP 0.25 broadcasts the
    base rate along the wrong axis (`expand_dims(pbar, -1) - dist_mean` subtracts pbar_k from
    row k instead of pbar_j from column j), which is only right when the labels are balanced;
    it is computed here as sum_k w_k ||d_k - f||^2. The fourth term, ``within_group``, makes
    `brier = uncertainty - resolution + reliability + within_group` an identity (see
    `BrierDecomposition` for every term's formula).

    Args:
        probs: (B, K) probabilities or (S, B, K) samples (averaged first).
        y: (B,) integer labels.

    Returns:
        BrierDecomposition(reliability, resolution, uncertainty, within_group).
    """
    p, labels = mean_probs(probs, y)
    # Imported here: loading TFP takes a second or more, and only this function needs it.
    import tensorflow_probability.substrates.numpy as tfp

    # TFP takes logits; log of the (tiny-clamped) probabilities is exact up to a per-row shift.
    logits = np.log(np.clip(p.cpu().numpy(), _TINY, None))
    # TFP takes log(0) for classes never seen in a predicted group; that is fine (it works in
    # log space) but numpy warns about it.
    with np.errstate(divide="ignore"):
        uncertainty, _, reliability = tfp.stats.brier_decomposition(
            labels=labels.cpu().numpy(), logits=logits
        )
    return BrierDecomposition(
        reliability=float(reliability),
        resolution=_resolution(p, labels),
        uncertainty=float(uncertainty) + 1.0,
        within_group=_within_group(p, labels),
    )
