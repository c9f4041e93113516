"""Per-sample attack objectives on logits: the attack maximises them.

Each loss maps (logits (B, K), labels (B,)) to a per-sample value (B,) that grows as
the model is pushed away from the label. A targeted attack minimises the same loss
towards the target labels, i.e. it maximises its negation.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]

# Keeps the DLR ratio finite when the top logits tie (as in AutoAttack).
_DLR_TINY = 1e-12


class Loss(str, Enum):
    """The built-in attack losses."""

    CE = "ce"
    MARGIN = "margin"
    DLR = "dlr"


def _as_float(logits: Tensor) -> Tensor:
    # Half-precision logits (AMP) lose the small differences the losses compare.
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def _label_logit_and_best_other(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The logit of the label and the largest other logit, each (B,)."""
    label_logit = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return label_logit, others.amax(dim=1)


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of the label, (B,)."""
    return F.cross_entropy(_as_float(logits), y, reduction="none")


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Carlini-Wagner margin max_{j != y} z_j - z_y on logits, (B,); positive once fooled."""
    label_logit, best_other = _label_logit_and_best_other(_as_float(logits), y)
    return best_other - label_logit


def dlr(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of logits ratio (Croce and Hein 2020), (B,); needs K >= 3.

    -(z_y - max_{j != y} z_j) / (z_(1) - z_(3)), with z_(i) the i-th largest logit:
    the margin divided by a spread, so rescaling the logits does not change it.
    """
    if logits.shape[1] < 3:
        raise ValueError(f"loss 'dlr' needs at least 3 classes; the model has K={logits.shape[1]}")
    logits = _as_float(logits)
    label_logit, best_other = _label_logit_and_best_other(logits, y)
    ranked = logits.sort(dim=1, descending=True).values
    return (best_other - label_logit) / (ranked[:, 0] - ranked[:, 2] + _DLR_TINY)


LOSSES: dict[Loss, LossFn] = {Loss.CE: cross_entropy, Loss.MARGIN: margin, Loss.DLR: dlr}
