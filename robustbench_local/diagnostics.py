"""Per-model measurements behind the gradient-masking checks (after AutoAttack's).

Measured once per model on (part of) the evaluation set and stored; ``checks`` turns them,
with the stored jobs, into warnings. A model whose gradients are masked (zero, NaN,
shattered, or random without a fixed seed) makes gradient attacks report robustness that
is not there; these numbers are how a run notices.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attacks import pgd
from attacks.descent import eval_mode

__all__ = ["LARGE_EPS_STEPS", "diagnose"]

LARGE_EPS_STEPS = 20
DIAGNOSTIC_EXAMPLES = 100  # enough to tell 0% from chance, cheap enough for every run


def _input_gradients(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy's input gradient per sample, (B, ...), with the model in eval mode."""
    with torch.enable_grad(), eval_mode(model):
        x_in = x.detach().clone().requires_grad_(True)
        logits = model(x_in)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits.float(), y, reduction="sum"), x_in)
    return grad


def diagnose(
    attack_model: nn.Module,
    evaluate_model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    seed: int,
    stochastic: bool,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> dict[str, float]:
    """Measure what the gradient-masking checks need.

    Args:
        attack_model: the view attacks differentiate.
        evaluate_model: the view predictions are measured on.
        x: clean inputs (B, ...); the first DIAGNOSTIC_EXAMPLES are used.
        y: labels (B,).
        seed: fixes the random start and, for a stochastic model, the dropout masks.
        stochastic: whether the model draws random masks by design (then two calls are
            compared under the same seed; otherwise under none).
        bounds: the valid input range; the large-eps attack may reach all of it.

    Returns:
        n; zero_grad_fraction and nan_grad_fraction (samples whose input gradient is all
        zero / has a NaN); repeat_max_abs_diff (largest difference between the outputs of
        two identical calls); large_eps and large_eps_accuracy (PGD at an eps that covers
        the whole input range: accuracy must fall to chance) and chance (1 / K).
    """
    x, y = x[:DIAGNOSTIC_EXAMPLES], y[:DIAGNOSTIC_EXAMPLES]

    def reseed(model: nn.Module) -> None:
        if stochastic:
            model.manual_seed(seed)

    reseed(attack_model)
    grad = _input_gradients(attack_model, x, y).flatten(1)
    nan = torch.isnan(grad).any(dim=1)
    zero = (grad == 0).all(dim=1) & ~nan

    outputs = []
    with torch.no_grad(), eval_mode(evaluate_model):
        for _ in range(2):
            reseed(evaluate_model)
            outputs.append(evaluate_model(x).float())
    repeat = float((outputs[0] - outputs[1]).abs().max())

    large_eps = bounds[1] - bounds[0]
    reseed(attack_model)
    # From x itself, no random start: at this eps a random start alone is a random image,
    # which would "succeed" without a single useful gradient.
    x_adv = pgd(
        attack_model,
        x,
        y,
        large_eps,
        steps=LARGE_EPS_STEPS,
        random_start=False,
        select="max_loss" if stochastic else "first_fooling",
        generator=torch.Generator().manual_seed(seed),
    )
    with torch.no_grad(), eval_mode(evaluate_model):
        reseed(evaluate_model)
        logits = evaluate_model(x_adv)
    return {
        "n": float(len(y)),
        "zero_grad_fraction": float(zero.float().mean()),
        "nan_grad_fraction": float(nan.float().mean()),
        "repeat_max_abs_diff": repeat if math.isfinite(repeat) else math.inf,
        "large_eps": large_eps,
        "large_eps_accuracy": float((logits.argmax(dim=1) == y).float().mean()),
        "chance": 1.0 / logits.shape[1],
    }
