"""The fast gradient sign method (Goodfellow et al. 2015): one linf step of size eps."""

from __future__ import annotations

from torch import Tensor, nn

from attacks._checks import check_non_negative
from attacks._driver import gradient_attack
from attacks.descent import FixedStep
from attacks.losses import Loss, LossFn


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    targeted: bool = False,
    loss: str | Loss | LossFn = "ce",
    bounds: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    """x + eps * sign(grad_x loss), clipped to the bounds: one step of the descent loop.

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean inputs (B, ...) within ``bounds``.
        y: true labels (B,), or target labels when ``targeted`` (then the step descends).
        eps: the linf step, which is also the radius of the ball.
        loss: "ce", "margin", "dlr", or (logits, y) -> (B,) to maximise.
        bounds: valid input range (low, high).

    Returns:
        (B, ...) adversarial inputs, x's dtype and device.
    """
    eps = check_non_negative("eps", eps)
    return gradient_attack(
        model,
        x,
        y,
        eps,
        norm="linf",
        steps=1,
        make_rule=lambda feasible: FixedStep(feasible, eps),
        random_start=False,
        restarts=1,
        targeted=targeted,
        loss=loss,
        bounds=bounds,
        eot_samples=1,
        early_stop=False,
        generator=None,
    )
