"""Per-model measurements behind the gradient-masking checks (after AutoAttack's, and more).

Measured once per model, before its jobs, on the first DIAGNOSTIC_EXAMPLES of the evaluation
set, and stored; ``checks`` turns them, with the stored jobs, into warnings. A model whose
gradients are masked (zero, NaN, shattered, random without a fixed seed, or simply wrong)
makes gradient attacks report robustness that is not there; these numbers are how a run
notices:

- the input gradients themselves: all zero, NaN, or different between two identical calls;
- a gradient attack at an eps that covers every input: a working one reaches ~0% accuracy,
  whatever the model (any image of another class is inside the ball);
- a cheap gradient-free probe (Square) at the sweep's middle and largest eps, which the
  summary compares, sample by sample, with the gradient attacks' jobs at those eps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attacks import pgd, square
from attacks.descent import eval_mode
from attacks.losses import LOSSES, Loss
from robustbench_local.registry import parse_option

__all__ = [
    "DIAGNOSTIC_EXAMPLES",
    "LARGE_EPS_STEPS",
    "PROBE_QUERIES",
    "diagnose",
    "input_gradients",
    "probe_eps",
    "zero_gradient",
]

LARGE_EPS_STEPS = 20
DIAGNOSTIC_EXAMPLES = 100  # enough to tell 0% from chance, cheap enough for every run
PROBE_QUERIES = 100  # Square's queries per sample and eps: a probe, cheap enough for every run
_TINY = 1e-30  # keeps a relative difference finite where a gradient is all zero

Reseed = Callable[[nn.Module], None]


def input_gradients(model: nn.Module, x: Tensor, y: Tensor, loss: str = "ce") -> Tensor:
    """The input gradient of each sample's loss, (B, ...), with the model in eval mode.

    Args:
        model: returns logits (B, K).
        x: inputs (B, ...); y: labels (B,).
        loss: a loss of the attacks (`attacks.losses.LOSSES`): "ce" (cross-entropy),
            "margin" (max other logit - label logit) or "dlr".
    """
    loss_fn = LOSSES[parse_option(Loss, loss, "loss")]  # the attacks' own losses
    with torch.enable_grad(), eval_mode(model):
        x_in = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x_in).float(), y).sum(), x_in)
    return grad


def zero_gradient(model: nn.Module, x: Tensor, y: Tensor, loss: str = "ce") -> Tensor:
    """(B,) bool: samples whose input gradient of ``loss`` is exactly zero everywhere.

    Under cross-entropy this is a saturated softmax (probability exactly 1 in float32)
    or a non-differentiable layer; PGD cannot move such a sample.
    """
    return (input_gradients(model, x, y, loss).flatten(1) == 0).all(dim=1)


def probe_eps(eps: Sequence[float]) -> list[float]:
    """The eps the gradient-free probe runs at: the sweep's middle and largest eps > 0.

    For (0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3): 0.1 and 0.3; for (0, 0.1, 0.2): 0.1 and 0.2;
    one eps if the sweep has one; none if it has no eps > 0.
    """
    positive = sorted({float(e) for e in eps if e > 0})
    if not positive:
        return []
    return sorted({positive[(len(positive) - 1) // 2], positive[-1]})


def _robust(model: nn.Module, x: Tensor, y: Tensor, reseed: Reseed) -> Tensor:
    """(B,) bool: correctly classified by the evaluation view (masks fixed by reseed)."""
    with torch.no_grad(), eval_mode(model):
        reseed(model)
        return model(x).argmax(dim=1) == y


def _gradient_checks(
    attack_model: nn.Module, x: Tensor, y: Tensor, reseed: Reseed
) -> dict[str, float]:
    """Zero, NaN and irreproducible input gradients (see `diagnose` for the keys)."""
    grads = []
    for _ in range(2):  # two identical calls: their gradients must agree
        reseed(attack_model)
        grads.append(input_gradients(attack_model, x, y, "ce").flatten(1))
    reseed(attack_model)
    margin_grad = input_gradients(attack_model, x, y, "margin").flatten(1)
    nan = torch.isnan(grads[0]).any(dim=1) | torch.isnan(margin_grad).any(dim=1)
    ce_zero = (grads[0] == 0).all(dim=1) & ~nan
    # No gradient under either loss: no gradient attack can move the sample. Zero under
    # cross-entropy only is a saturated softmax, which the runner's margin fallback handles.
    zero = ce_zero & (margin_grad == 0).all(dim=1)
    # Compared where both are finite: NaN has its own check.
    finite = torch.isfinite(grads[0]) & torch.isfinite(grads[1])
    diff = float((grads[0] - grads[1])[finite].abs().max()) if bool(finite.any()) else 0.0
    scale = float(grads[0][finite].abs().max()) if bool(finite.any()) else 0.0
    return {
        "zero_grad_fraction": float(zero.float().mean()),
        "saturated_fraction": float((ce_zero & ~zero).float().mean()),
        "nan_grad_fraction": float(nan.float().mean()),
        "repeat_grad_rel_diff": diff / max(scale, _TINY),
    }


def _large_eps(
    attack_model: nn.Module,
    evaluate_model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    seed: int,
    stochastic: bool,
    reseed: Reseed,
) -> float:
    """Accuracy after PGD at an eps that covers every input: cross-entropy, then margin on
    the samples it did not fool (a saturated softmax stops cross-entropy, not margin)."""
    x_adv = x
    left = torch.ones_like(y, dtype=torch.bool)
    for loss in ("ce", "margin"):
        reseed(attack_model)
        # From x itself, no random start: at this eps a random start alone is a random
        # image, which would "succeed" without a single useful gradient. The eps covers
        # the input range on purpose, so the attacks' unit-mistake warning is not for us.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*covers the whole input range")
            candidate = pgd(
                attack_model,
                x[left],
                y[left],
                eps,
                steps=LARGE_EPS_STEPS,
                random_start=False,
                loss=loss,
                early_stop=False,
                select="max_loss" if stochastic else "first_fooling",
                generator=torch.Generator().manual_seed(seed),
            )
        x_adv = x_adv.clone()
        x_adv[left] = candidate
        left = _robust(evaluate_model, x_adv, y, reseed)
        if not bool(left.any()):
            break
    return float(left.float().mean())


def _probe(
    attack_model: nn.Module,
    evaluate_model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps_values: Sequence[float],
    *,
    seed: int,
    reseed: Reseed,
    n_queries: int,
) -> dict[str, Any]:
    """Square at each eps: its accuracy and which samples it left robust (see `diagnose`)."""
    clean = _robust(evaluate_model, x, y, reseed)
    accuracy, robust = [], []
    for i, eps in enumerate(eps_values):
        reseed(attack_model)
        x_adv = square(
            attack_model,
            x,
            y,
            eps,
            n_queries=n_queries,
            generator=torch.Generator(device=x.device).manual_seed(seed + 1 + i),
        )
        kept = clean & _robust(evaluate_model, x_adv, y, reseed)
        accuracy.append(float(kept.float().mean()))
        robust.append([int(v) for v in kept.tolist()])
    return {
        "attack": "square",
        "n_queries": n_queries,
        "n": len(y),
        "eps": list(eps_values),
        "accuracy": accuracy,
        "robust": robust,
    }


def diagnose(
    attack_model: nn.Module,
    evaluate_model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    seed: int,
    stochastic: bool,
    bounds: tuple[float, float] = (0.0, 1.0),
    sweep_eps: Sequence[float] = (),
    norm: str = "linf",
    probe_queries: int = PROBE_QUERIES,
) -> dict[str, Any]:
    """Measure what the gradient-masking checks need.

    Args:
        attack_model: the view attacks differentiate.
        evaluate_model: the view predictions are measured on.
        x: clean inputs (B, ...); the first DIAGNOSTIC_EXAMPLES are used.
        y: labels (B,).
        seed: fixes the attacks' randomness and, for a stochastic model, the dropout masks.
        stochastic: whether the model draws random masks by design (then two calls are
            compared under the same seed; otherwise under none).
        bounds: the valid input range; the large-eps attack may reach all of it.
        sweep_eps: the run's eps; the gradient-free probe runs at `probe_eps` of them.
        norm: the run's threat model; Square is linf only, so an l2 run skips the probe.
        probe_queries: Square's queries per sample and eps.

    Returns:
        n; zero_grad_fraction (samples whose input gradient is all zero under both
        cross-entropy and margin), saturated_fraction (zero under cross-entropy only: a
        saturated softmax) and nan_grad_fraction; repeat_max_abs_diff (largest difference
        between the outputs of two identical calls) and repeat_grad_rel_diff (between their
        input gradients, relative to the largest gradient entry); large_eps and
        large_eps_accuracy (PGD from the clean input at an eps that covers the whole input
        range: a working attack reaches ~0%) and chance (1 / K); probe: the gradient-free
        probe, {"attack", "n_queries", "n", "eps": [...], "accuracy": [...], "robust":
        [[0/1 per sample] per eps]}, or {"skipped": why}.
    """
    x, y = x[:DIAGNOSTIC_EXAMPLES], y[:DIAGNOSTIC_EXAMPLES]

    def reseed(model: nn.Module) -> None:
        if stochastic:
            model.manual_seed(seed)

    values: dict[str, Any] = {"n": float(len(y))}
    values.update(_gradient_checks(attack_model, x, y, reseed))

    outputs = []
    with torch.no_grad(), eval_mode(evaluate_model):
        for _ in range(2):
            reseed(evaluate_model)
            outputs.append(evaluate_model(x).float())
    repeat = float((outputs[0] - outputs[1]).abs().max())
    values["repeat_max_abs_diff"] = repeat if math.isfinite(repeat) else math.inf

    large_eps = bounds[1] - bounds[0]
    values["large_eps"] = large_eps
    values["large_eps_accuracy"] = _large_eps(
        attack_model,
        evaluate_model,
        x,
        y,
        large_eps,
        seed=seed,
        stochastic=stochastic,
        reseed=reseed,
    )
    values["chance"] = 1.0 / outputs[0].shape[1]

    eps_values = probe_eps(sweep_eps)
    if norm != "linf":
        values["probe"] = {
            "skipped": f"the gradient-free probe (square) is linf only; this run's norm is {norm}"
        }
    elif not eps_values:
        values["probe"] = {"skipped": "the sweep has no eps > 0"}
    else:
        values["probe"] = _probe(
            attack_model,
            evaluate_model,
            x,
            y,
            eps_values,
            seed=seed,
            reseed=reseed,
            n_queries=probe_queries,
        )
    return values
