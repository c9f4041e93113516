"""DeepFool (Moosavi-Dezfooli et al. 2016): a small perturbation that crosses the nearest
decision boundary, found by linearising the model step after step.

Unlike fgsm, pgd and apgd there is no eps: DeepFool looks for the smallest perturbation
that changes the prediction, so the size of what it returns, per sample, estimates that
sample's distance to the decision boundary (its "robustness radius"). Each step needs the
input gradient of every candidate class's logit difference, not of one loss, so DeepFool
runs its own short loop rather than the shared descent loop.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks._checks import (
    check_bounds,
    check_callback,
    check_inputs,
    check_logits,
    check_non_negative,
    check_options,
    check_positive_int,
    explain_model_errors,
    parse_option,
    warn_if_probabilities,
)
from attacks.descent import Callback, StepInfo, eval_mode
from attacks.losses import margin
from attacks.norms import Norm

# Keeps the division by a gradient's norm finite where the gradient vanishes (a flat
# region): the step is then zero, not NaN.
_TINY = 1e-12


def _check_candidates(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"candidates must be an int >= 2 or None; got {value!r}")
    if value < 2:
        raise ValueError(f"candidates must be an int >= 2 or None; got {value}")
    return value


_CHECKS = {
    "norm": lambda value: parse_option(Norm, value, "norm"),
    "steps": lambda value: check_positive_int("steps", value),
    "overshoot": lambda value: check_non_negative("overshoot", value),
    "candidates": _check_candidates,
    "bounds": check_bounds,
}


def validate_options(**options: object) -> None:
    """Check deepfool's options (norm, steps, overshoot, candidates, bounds) by the rules
    :func:`deepfool` applies, without a model or data.

    Raises:
        TypeError, ValueError: as :func:`deepfool` would, naming the argument and the value.
    """
    check_options(_CHECKS, options, "deepfool")


def candidate_classes(logits: Tensor, y: Tensor, candidates: int | None) -> Tensor:
    """Per sample, its label and then the other classes with the highest logits.

    Args:
        logits: (B, K) the model's logits on the clean inputs.
        y: (B,) labels.
        candidates: how many classes to keep, the label included; None keeps all K.

    Returns:
        (B, C) int64 class indices, column 0 the label, C = min(candidates, K).
    """
    count = logits.shape[1] if candidates is None else min(candidates, logits.shape[1])
    ranking = logits.detach().scatter(1, y[:, None], float("inf"))  # the label ranks first
    return ranking.argsort(dim=1, descending=True)[:, :count]


def _linearised_step(differences: Tensor, grads: Tensor, norm: Norm) -> Tensor:
    """The smallest step onto the nearest boundary of the linearised model, per sample.

    For each candidate k the boundary f_k = f_y is, to first order, the hyperplane
    f'_k + w'_k . r = 0 (f'_k = f_k - f_y, w'_k its gradient); its distance is
    |f'_k| / ||w'_k||_q with q the dual norm (l2 for l2, l1 for linf). The step goes to the
    nearest: r = |f'| / ||w'||_2^2 * w' (l2) or r = |f'| / ||w'||_1 * sign(w') (linf).

    Args:
        differences: (A, C-1) f_k - f_y for the candidates k.
        grads: (A, C-1, ...) their input gradients.
        norm: the threat model.

    Returns:
        (A, ...) the step r.
    """
    flat = grads.flatten(2)
    dual = flat.norm(dim=2) if norm is Norm.L2 else flat.abs().sum(dim=2)  # (A, C-1)
    distance = differences.abs() / dual.clamp_min(_TINY)
    nearest = distance.argmin(dim=1)
    rows = torch.arange(grads.shape[0], device=grads.device)
    w, size = grads[rows, nearest], distance[rows, nearest]  # (A, ...), (A,)
    shape = (-1, *([1] * (w.dim() - 1)))
    if norm is Norm.L2:
        unit = w / dual[rows, nearest].clamp_min(_TINY).view(shape)
        return size.view(shape) * unit
    return size.view(shape) * w.sign()


def _report(
    callback: Callback | None, step: int, idx: Tensor, logits: Tensor, y: Tensor, fooled: Tensor
) -> None:
    if callback is not None:
        loss = margin(logits.detach(), y)  # max_{k != y} f_k - f_y: positive once fooled
        callback(StepInfo(step, 0, idx.clone(), loss.clone(), fooled.clone()))


def _search(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    norm: Norm,
    steps: int,
    overshoot: float,
    candidates: int | None,
    bounds: tuple[float, float],
    callback: Callback | None,
) -> Tensor:
    """DeepFool's loop over the samples still correctly classified; returns (B, ...)."""
    x_adv = x.clone()  # the iterates x_0 = x, x_1, ...: the overshot boundary estimates
    idx = torch.arange(x.shape[0], device=x.device)  # rows still attacked
    classes = torch.empty(0, dtype=torch.long)
    for k in range(steps + 1):
        x_in = x_adv[idx].requires_grad_(True)
        if k == 0:
            with explain_model_errors(model, x_in):
                logits = model(x_in)
            check_logits(logits, y, x_in)
            if logits.shape[1] < 2:
                raise ValueError(
                    f"deepfool needs a model with K >= 2 classes; got K={logits.shape[1]}"
                )
            warn_if_probabilities(logits)
            classes = candidate_classes(logits, y, candidates)
        else:
            logits = model(x_in)
        labels = y[idx]
        fooled = logits.detach().argmax(dim=1) != labels
        _report(callback, k, idx, logits, labels, fooled)
        # A fooled sample is done: its current iterate is its answer (x itself for a
        # clean error). The last pass only scores the final iterate.
        open_rows = (~fooled).nonzero().squeeze(1)
        if k == steps or open_rows.numel() == 0:
            break
        scores = logits.gather(1, classes[idx])  # (A, C): the label's logit first
        differences = scores[:, 1:] - scores[:, :1]  # (A, C-1): f_k - f_y
        count = differences.shape[1]
        # One backward pass per candidate; samples do not interact in eval mode, so the
        # gradient of a column's sum is each row's own gradient.
        grads = torch.stack(
            [
                torch.autograd.grad(
                    differences[open_rows, j].sum(), x_in, retain_graph=j < count - 1
                )[0][open_rows]
                for j in range(count)
            ],
            dim=1,
        )
        step = _linearised_step(differences[open_rows].detach(), grads, norm)
        idx = idx[open_rows]
        boundary = (x_in.detach()[open_rows] + step).clamp(*bounds)
        # The overshoot scales the whole perturbation up to the estimated boundary, so the
        # next iterate lies a fraction past it. Scaling each step instead (x_k + (1 + o) r)
        # fades as the steps shrink: the iterates then creep up on a curved boundary from
        # inside without crossing it, which the authors' code and foolbox patch by adding
        # 1e-4 to every step (and which would make a step on a linear model inexact).
        x_adv[idx] = (x[idx] + (1.0 + overshoot) * (boundary - x[idx])).clamp(*bounds)
    return x_adv


def deepfool(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    norm: str | Norm = "l2",
    steps: int = 50,
    overshoot: float = 0.02,
    candidates: int | None = 10,
    bounds: tuple[float, float] = (0.0, 1.0),
    callback: Callback | None = None,
) -> Tensor:
    """DeepFool: step to the nearest boundary of the linearised model until the prediction
    changes, per sample.

    Each step linearises the model at the current iterate x_i: for every candidate class
    k != y it takes f'_k = f_k(x_i) - f_y(x_i) and w'_k = grad f'_k, picks the class whose
    hyperplane f'_k + w'_k . r = 0 is nearest in the norm's dual (l2: |f'_k| / ||w'_k||_2;
    linf: |f'_k| / ||w'_k||_1) and steps onto it: r_i = |f'| / ||w'||_2^2 * w' (l2) or
    |f'| / ||w'||_1 * sign(w') (linf), to b_i = x_i + r_i (clipped to the bounds). The
    next iterate is x_{i+1} = x + (1 + overshoot) * (b_i - x), clipped: the overshoot scales
    the whole perturbation, so the iterate lies a little past the estimated boundary. A
    sample stops once misclassified. On a linear model one step is exact: with
    ``overshoot=0`` it lands on the nearest decision boundary, at the minimal l2 (or linf)
    distance.

    As in the authors' code (and foolbox) the model is linearised at the overshot iterate
    and ``candidates`` limits the classes looked at. Unlike them the overshoot applies to
    the distance from x to the boundary estimate rather than to the sum of the steps (with
    which it fades as the steps shrink), and no 1e-4 is added to every step.

    Args:
        model: returns logits (B, K), K >= 2; run in eval mode, its training flags
            restored after; no gradient is left on its parameters. For a stochastic model
            (MC dropout) "fooled" is the verdict of one forward pass, which may not hold
            on the next.
        x: clean inputs (B, ...) in pixel space within ``bounds``.
        y: true labels (B,).
        norm: "l2" (the paper's main attack) or "linf".
        steps: the most steps per sample (each costs one forward and C - 1 backward passes).
        overshoot: how far past the boundary to go, as a fraction of the perturbation.
        candidates: the classes considered, the label included: the label and the others
            with the highest clean logits (as foolbox does); None considers all K. Fewer is
            faster and rarely finds a farther boundary.
        bounds: valid input range (low, high).
        callback: called as ``callback(info)`` with an :class:`attacks.StepInfo` on x (step
            0) and after each step, for the samples still attacked: ``loss`` is the margin
            max_{k != y} f_k - f_y (positive once fooled), ``restart`` is always 0.

    Returns:
        (B, ...) x's dtype and device: per sample the first iterate that fools the model; x
        itself where the model is already wrong; the last iterate where ``steps`` ran out.
        ``(x_adv - x)`` per sample is the perturbation whose norm estimates the distance to
        the decision boundary.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    validate_options(
        norm=norm, steps=steps, overshoot=overshoot, candidates=candidates, bounds=bounds
    )
    norm = parse_option(Norm, norm, "norm")
    bounds = check_bounds(bounds)
    check_inputs(x, y, bounds)
    check_callback(callback)
    # The caller may sit in no_grad or inference mode; DeepFool still needs input gradients.
    with torch.inference_mode(False), torch.enable_grad(), eval_mode(model):
        x_adv = _search(
            model,
            x.detach().clone(),
            y.detach().clone().long(),
            norm=norm,
            steps=steps,
            overshoot=float(overshoot),
            candidates=candidates,
            bounds=bounds,
            callback=callback,
        )
    return x_adv.detach()
