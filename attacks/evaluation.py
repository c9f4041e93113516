"""What an attack achieved: robust accuracy and attack success rate, by the benchmark's rules.

- Robust accuracy is over all N samples, and a clean error counts as not robust (the
  AutoAttack convention). The attacks return, per sample, an iterate taken after a step,
  so on their output this is simply the accuracy on ``x_adv``; pass the clean ``x`` as
  well to count clean errors explicitly, as the benchmark does.
- The success rate is over the initially correct samples only: of those the model
  classified correctly, the fraction the attack made it misclassify.

Both run the model in eval mode (each module's training flag restored after) without
gradients. A stochastic model (MC dropout) is judged by one forward pass per sample, so its
numbers vary between calls unless its random source is seeded.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attacks._checks import (
    check_batch,
    check_logits,
    check_positive_int,
    explain_model_errors,
    warn_caller,
)
from attacks.descent import eval_mode


def _check_batch_size(batch_size: object) -> int | None:
    return None if batch_size is None else check_positive_int("batch_size", batch_size)


def predictions(model: nn.Module, x: Tensor, y: Tensor, batch_size: int | None = None) -> Tensor:
    """The model's predicted classes (B,), argmax of its logits, in eval mode without grad.

    Args:
        model: returns logits (B, K).
        x: (B, ...) inputs.
        y: (B,) labels, to check the output's shape and label range against.
        batch_size: rows per forward pass; None runs the whole batch at once.

    Returns:
        (B,) int64 predictions on x's device.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_batch(x, y)
    size = _check_batch_size(batch_size) or x.shape[0]
    parts = []
    with torch.no_grad(), eval_mode(model):
        for rows, labels in zip(x.split(size), y.split(size), strict=True):
            with explain_model_errors(model, rows):
                logits = model(rows)
            check_logits(logits, labels, rows)
            parts.append(logits.argmax(dim=1))
    return torch.cat(parts)


def robust_accuracy(
    model: nn.Module,
    x_adv: Tensor,
    y: Tensor,
    *,
    x: Tensor | None = None,
    batch_size: int | None = None,
) -> float:
    """The fraction of all N samples the model still classifies correctly under attack.

    Args:
        model: returns logits (B, K); run in eval mode without gradients.
        x_adv: (N, ...) the attack's output.
        y: (N,) true labels.
        x: (N, ...) the clean inputs, optional: given, a sample counts as robust only if
            the model is right on both x and x_adv (the benchmark's rule). The attacks'
            outputs make the two agree in all but rare cases (a step that happens to
            correct a clean error).
        batch_size: rows per forward pass; None runs each tensor in one pass.

    Returns:
        Robust accuracy in [0, 1].
    """
    correct = predictions(model, x_adv, y, batch_size) == y
    if x is not None:
        _check_same_shape(x, x_adv)
        correct &= predictions(model, x, y, batch_size) == y
    return float(correct.double().mean())


def success_rate(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    *,
    batch_size: int | None = None,
) -> float:
    """The fraction of the initially correct samples that the attack made misclassified.

    Samples the model already gets wrong on x are left out: an attack cannot take credit
    for them (robust accuracy counts them as not robust instead).

    Args:
        model: returns logits (B, K); run in eval mode without gradients.
        x: (N, ...) clean inputs.
        x_adv: (N, ...) the attack's output for x.
        y: (N,) true labels.
        batch_size: rows per forward pass; None runs each tensor in one pass.

    Returns:
        The success rate in [0, 1]; NaN, with a UserWarning, when the model gets no sample
        of x right (there is nothing to attack), as the benchmark stores it.
    """
    _check_same_shape(x, x_adv)
    clean_ok = predictions(model, x, y, batch_size) == y
    adv_ok = predictions(model, x_adv, y, batch_size) == y
    if not bool(clean_ok.any()):
        warn_caller(
            f"success_rate: the model classifies none of the {y.shape[0]} clean samples "
            "correctly, so there is no success rate to measure; returning nan"
        )
        return math.nan
    return float((~adv_ok[clean_ok]).double().mean())


def _check_same_shape(x: object, x_adv: object) -> None:
    if isinstance(x, Tensor) and isinstance(x_adv, Tensor) and x.shape != x_adv.shape:
        raise ValueError(
            f"x must have the shape of x_adv {tuple(x_adv.shape)}; got {tuple(x.shape)}"
        )
