"""The fast gradient sign method (Goodfellow et al. 2015): one step of size eps.

Under linf the step is eps * sign(grad); under l2 it is eps * grad / |grad| (the fast
gradient method, FGM). Both are one step of the shared loop in :mod:`attacks.descent`; with
``eot_samples`` and a ``transform`` the gradient is the average over random transformations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks._checks import check_non_negative
from attacks._driver import LOOP_CHECKS, Transform, check_loop_options, gradient_attack
from attacks.descent import Callback, FixedStep
from attacks.losses import Loss, LossFn
from attacks.norms import Norm

_OPTIONS = ("norm", "loss", "bounds", "targeted", "eot_samples", "transform")
_CHECKS = {name: LOOP_CHECKS[name] for name in _OPTIONS}


def validate_options(**options: object) -> None:
    """Check fgsm's options (norm, loss, bounds, targeted, eot_samples, transform) by the
    rules :func:`fgsm` applies, without a model or data.

    Raises:
        TypeError, ValueError: as :func:`fgsm` would, naming the argument and the value.
    """
    check_loop_options(_CHECKS, options, "fgsm")


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str | Norm = "linf",
    targeted: bool = False,
    loss: str | Loss | LossFn = "ce",
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | int | None = None,
    callback: Callback | None = None,
    eot_samples: int = 1,
    transform: Transform | None = None,
) -> Tensor:
    """One ascent step of size eps from x, clipped to the bounds: one step of the descent loop.

    linf: x + eps * sign(grad_x loss) (FGSM); l2: x + eps * grad / |grad|_2 per sample
    (FGM; a zero gradient leaves the sample where it is).

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean inputs (B, ...) within ``bounds``.
        y: true labels (B,), or target labels when ``targeted`` (then the step descends).
        eps: the step, which is also the radius of the ball.
        norm: "linf" or "l2".
        targeted: drive the prediction to y instead of away from it.
        loss: "ce", "margin", "dlr", or (logits, y) -> (B,) to maximise.
        bounds: valid input range (low, high).
        generator: a torch.Generator, an int seed or None, as every attack takes it. fgsm
            itself draws nothing; it seeds the ``transform``'s own generator, if any.
        callback: called as ``callback(info)`` with an :class:`attacks.StepInfo` for x
            (step 0) and for the result (step 1): the loss and whether each row is fooled.
            Scoring the result costs one more forward pass, taken after the result is
            fixed; the callback receives copies and cannot change it.
        eot_samples: forward passes whose gradients are averaged for the one step: of a
            stochastic model, or over draws of ``transform``. 1 (default): the plain
            gradient at x.
        transform: a differentiable random transformation (x (B, C, H, W), generator) ->
            x' (B, C, H, W) drawn from the generator it is given (expectation over
            transformation, Athalye et al. 2018): the step follows the gradient at x of the
            loss on transform(x, g), averaged over ``eot_samples`` fresh draws. Seeded and
            checked as in :func:`attacks.pgd`. None (default): no transformation.

    Returns:
        (B, ...) adversarial inputs, x's dtype and device.
    """
    eps = check_non_negative("eps", eps)
    return gradient_attack(
        model,
        x,
        y,
        eps,
        norm=norm,
        steps=1,
        make_rule=lambda feasible: FixedStep(feasible, eps),
        random_start=False,
        restarts=1,
        targeted=targeted,
        loss=loss,
        bounds=bounds,
        eot_samples=eot_samples,
        early_stop=False,
        generator=generator,
        callback=callback,
        transform=transform,
    )
