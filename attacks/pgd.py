"""Projected gradient descent (Madry et al. 2018) under the linf or l2 norm."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks._checks import check_non_negative
from attacks._driver import (
    LOOP_CHECKS,
    Objective,
    Transform,
    check_loop_options,
    gradient_attack,
)
from attacks.descent import Callback, FixedStep, Select
from attacks.losses import Loss, LossFn
from attacks.norms import Norm


def _check_step_size(value: object) -> float | None:
    return None if value is None else check_non_negative("step_size", value)


_CHECKS = {**LOOP_CHECKS, "step_size": _check_step_size}


def validate_options(**options: object) -> None:
    """Check pgd's options (any of its keyword arguments but the generator, the objective
    and the callback) by the rules :func:`pgd` applies, without a model or data.

    A benchmark config is checked with this before any work starts.

    Raises:
        TypeError, ValueError: as :func:`pgd` would, naming the argument and the value.
    """
    check_loop_options(_CHECKS, options, "pgd")


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str | Norm = "linf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    targeted: bool = False,
    loss: str | Loss | LossFn = "ce",
    bounds: tuple[float, float] = (0.0, 1.0),
    eot_samples: int = 1,
    early_stop: bool | None = None,
    generator: torch.Generator | int | None = None,
    select: str | Select | None = None,
    objective: Objective | None = None,
    callback: Callback | None = None,
    transform: Transform | None = None,
) -> Tensor:
    """Projected gradient ascent on the loss, inside the eps-ball and the input bounds.

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean inputs (B, ...) in pixel space within ``bounds``.
        y: true labels (B,), or target labels when ``targeted``.
        eps: radius of the threat model's ball (e.g. 8/255 for linf on CIFAR).
        norm: "linf" or "l2".
        steps: gradient steps per restart.
        step_size: defaults to 2.5 * eps / steps.
        random_start: start uniformly inside the ball rather than at x.
        restarts: independent runs; each later one attacks only samples not yet fooled.
        targeted: drive the prediction to y instead of away from it.
        loss: "ce", "margin" (CW margin on logits), "dlr", or (logits, y) -> (B,) to maximise.
        bounds: valid input range (low, high).
        eot_samples: forward passes averaged per gradient, for stochastic models and for
            a random ``transform`` (one fresh transformation per pass).
        early_stop: stop updating samples once fooled, under select="first_fooling": the
            result is the same (the first fooling iterate is kept either way), only the
            compute is saved. None (default): True unless the model is stochastic, a
            ``transform`` is given or ``select="max_loss"`` (see below). True with
            ``select="max_loss"`` is an error.
        generator: source of the random start, for reproducible attacks: a
            torch.Generator, or an int seed (a fresh generator on x's device). A
            ``transform`` draws from a generator of its own seeded from this one's state
            (see ``transform``).
        select: "first_fooling" (the first iterate that fools, else the highest-loss
            one) or "max_loss" (the highest-loss iterate: for adversarial training, and
            for stochastic models, whose single noisy verdict may not hold). None
            (default): "first_fooling" when ``early_stop=True``, else "max_loss" (and no
            early stop) under a ``transform``, else by the model: "max_loss" (and no early
            stop) for a stochastic one, "first_fooling" (with early stop) for a
            deterministic one. A model is stochastic when it declares
            ``stochastic = True`` (``uncertainty.MCDropout`` does; ``False`` declares it
            deterministic); a model that declares nothing is run twice without gradients,
            in eval mode, on the first 8 rows of x, and is stochastic when the two outputs
            differ beyond float rounding (see :func:`attacks.stochastic.is_stochastic`;
            those passes draw from the model's own random source, if any).
        objective: instead of ``loss``, a whole objective (model, x (B, ...), y (B,)) ->
            (values to maximise (B,), logits (B, K)), for adaptive attacks whose goal needs
            more than the logits (say, keeping an uncertainty low while fooling).
        callback: called as ``callback(info)`` with an :class:`attacks.StepInfo` on each
            restart's start (step 0) and after each step: the rows scored, their loss and
            whether each is fooled, for plotting loss trajectories and first-fooling steps.
            It receives copies and cannot change the result.
        transform: expectation over transformation (Athalye et al. 2018): a differentiable
            random transformation (x (B, C, H, W), generator) -> x' (B, C, H, W) (a random
            rotation, shift, added noise) that draws its randomness from the generator it
            is given. Every forward pass of the attack runs the model (or ``objective``) on
            transform(x_k, g) with a fresh draw, so the loss and gradient at the iterate
            x_k are averaged over ``eot_samples`` draws, the gradient flowing through the
            transform to x_k, and "fooled" is the argmax of the averaged probabilities. The
            draws come from a generator of their own, seeded from a hash of
            ``generator``'s state without drawing from it: the same seed gives the same
            draws, and the random starts are those without a transform (so
            ``transform=lambda x, g: x`` changes nothing). The first call checks that it
            returns x's shape with a gradient path back to x. A transform makes the
            objective random, so ``select=None`` resolves as for a stochastic model (the
            model is not probed). Check the result under fresh draws with
            :func:`attacks.transform_success_rate`. None (default): no transformation.

    Returns:
        (B, ...) adversarial inputs, x's dtype and device: per sample the first iterate
        that fools the model, else the one with the highest loss ("first_fooling"); or the
        one with the highest loss ("max_loss").
    """
    eps = check_non_negative("eps", eps)
    validate_options(
        norm=norm,
        steps=steps,
        step_size=step_size,
        restarts=restarts,
        loss=loss,
        bounds=bounds,
        eot_samples=eot_samples,
        early_stop=early_stop,
        select=select,
        transform=transform,
    )
    if step_size is None:
        step_size = 2.5 * eps / steps
    step_size = check_non_negative("step_size", step_size)
    return gradient_attack(
        model,
        x,
        y,
        eps,
        norm=norm,
        steps=steps,
        make_rule=lambda feasible: FixedStep(feasible, step_size),
        random_start=random_start,
        restarts=restarts,
        targeted=targeted,
        loss=loss,
        bounds=bounds,
        eot_samples=eot_samples,
        early_stop=early_stop,
        generator=generator,
        select=select,
        objective=objective,
        callback=callback,
        transform=transform,
    )
