"""Is a model stochastic? The answer picks the gradient attacks' defaults (see `pgd`).

A stochastic model (MC dropout, noise injected in the forward pass, an ensemble with such a
member) can give a different prediction for the same input on every call, so a single
"fooled" verdict taken during an attack may not hold when the result is evaluated. The
attacks then return the highest-loss iterate and keep attacking every sample; for a
deterministic model the first fooling iterate is final and the work can stop there.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks._checks import explain_model_errors
from attacks.descent import eval_mode

#: Rows of the batch the empirical check runs the model on (twice, without gradients).
PROBE_ROWS = 8
# Two passes that differ by less than this (relative and absolute, or 4 machine epsilons of
# a coarser dtype) are the same: a GPU kernel with atomics may round differently per call.
_PROBE_TOLERANCE = 1e-5


def declared_stochastic(model: nn.Module) -> bool | None:
    """What the model says about itself: its ``stochastic`` attribute when that is a bool.

    ``uncertainty.MCDropout`` declares True, ``uncertainty.DeepEnsemble`` False when all its
    members declare False (True when any declares True); any other value, or none, is
    None: unknown.
    """
    flag = getattr(model, "stochastic", None)
    return flag if isinstance(flag, bool) else None


def _same_output(first: object, second: object) -> bool:
    if isinstance(first, Tensor) and isinstance(second, Tensor):
        if first.shape != second.shape or first.dtype != second.dtype:
            return False
        if torch.equal(first, second):
            return True
        if not first.is_floating_point():
            return False
        tol = max(_PROBE_TOLERANCE, 4.0 * torch.finfo(first.dtype).eps)
        return bool(torch.allclose(first, second, rtol=tol, atol=tol, equal_nan=True))
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
        return len(first) == len(second) and all(
            _same_output(a, b) for a, b in zip(first, second, strict=True)
        )
    return False  # an output we cannot compare: assume the worst


def is_stochastic(model: nn.Module, x: Tensor) -> bool:
    """Whether ``model`` is stochastic: declared (see `declared_stochastic`), else measured.

    The measurement runs the model twice, in eval mode (each module's training flag is
    restored after) and without gradients, on the first `PROBE_ROWS` rows of x; outputs that
    differ beyond float rounding mean stochastic. Those two passes draw from the model's own
    random source (the global RNG for a model calling ``torch.randn``), so a later result
    reproduces only if the same check runs before it; a model that declares ``stochastic``
    costs no pass at all. An output that is not a tensor (or a tuple of tensors) counts as
    stochastic: the cautious answer.

    Args:
        model: the model an attack will run, in the mode it will run it (eval).
        x: (B, ...) the batch it will attack.

    Returns:
        True for a stochastic model, False for a deterministic one.
    """
    declared = declared_stochastic(model)
    if declared is not None:
        return declared
    rows = x[:PROBE_ROWS].detach()
    with torch.no_grad(), eval_mode(model), explain_model_errors(model, rows):
        first = model(rows)
        second = model(rows)
    return not _same_output(first, second)
