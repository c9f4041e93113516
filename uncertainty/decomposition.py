"""Split predictive uncertainty into its aleatoric and epistemic parts (in nats)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._validation import check_probs


class Uncertainty(NamedTuple):
    """Per-input uncertainty in nats; total = aleatoric + epistemic.

    Attributes:
        total: (B,) entropy of the mean prediction, H[mean_s p_s].
        aleatoric: (B,) mean entropy of the samples, mean_s H[p_s] (expected data uncertainty).
        epistemic: (B,) mutual information between the label and the sample, >= 0.
    """

    total: Tensor
    aleatoric: Tensor
    epistemic: Tensor


def _entropy(probs: Tensor) -> Tensor:
    # xlogy gives 0 * log 0 = 0, so one-hot rows have entropy exactly 0 instead of NaN.
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def decompose(probs: Tensor) -> Uncertainty:
    """Decompose the predictive entropy of probability samples (Depeweg et al. 2018).

    Computed in float64 and returned in the input's dtype. Epistemic is clamped at 0 (it can only
    go negative by rounding) and total is then defined as aleatoric + epistemic, so the identity
    holds exactly in float64.

    The parts carry a graph exactly when `probs` does. Samples from `sample_probs` on a plain
    input have none, so the parts plot directly (`plt.hist(u.epistemic)`); an attack that
    differentiates through `sample_probs` keeps the graph to its input. Probabilities you
    stack yourself from a model's outputs keep the graph to its parameters: build them under
    `torch.no_grad()` to plot them.

    Args:
        probs: (S, B, K) probabilities: S samples or ensemble members, B inputs, K classes. Use
            `uncertainty.sample_probs(model, x)` to get them from any model.

    Returns:
        Uncertainty(total, aleatoric, epistemic), each (B,), in nats.
    """
    probs = check_probs(probs, samples_only=True)
    # Validation tolerates rounding (entries down to -PROB_ATOL); xlogy of a negative entry is
    # NaN, so those entries are clamped to 0 first.
    p = probs.double().clamp_min(0.0)
    total = _entropy(p.mean(dim=0))
    aleatoric = _entropy(p).mean(dim=0)
    epistemic = (total - aleatoric).clamp_min(0.0)
    total = aleatoric + epistemic
    dtype = probs.dtype
    return Uncertainty(total.to(dtype), aleatoric.to(dtype), epistemic.to(dtype))
