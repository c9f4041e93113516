"""The Square attack (Andriushchenko et al. 2020): query-limited random search under linf.

It needs only the model's outputs, never a gradient, so it still works where a defence
masks or breaks gradients (non-differentiable preprocessing, a forward under no_grad):
a gradient attack that fails there while Square succeeds is the signature of masking.
"""

from __future__ import annotations

import math
from bisect import bisect_left

import torch
from torch import Tensor, nn

from attacks._checks import (
    check_bool,
    check_bounds,
    check_fraction,
    check_inputs,
    check_non_negative,
    check_options,
    check_positive_int,
    resolve_generator,
    resolve_loss,
    warn_if_eps_covers_bounds,
)
from attacks._driver import make_evaluate
from attacks.descent import Evaluate, eval_mode
from attacks.losses import Loss, LossFn
from attacks.norms import Norm

# The paper's schedule for a 10,000-query budget: p halves after each of these queries.
# Other budgets stretch the same shape over their own length.
_SCHEDULE_QUERIES = 10_000
_HALVINGS_AFTER = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
# Draws of a window's signs until the proposal differs from the current point (it may
# repeat an earlier, overlapping window); with C channels a draw fails with chance <= 2^-C.
_MAX_DRAWS = 16


def p_schedule(i: int, n_queries: int, p_init: float) -> float:
    """The fraction of the pixels the i-th update may change (i = 0: the first after the start).

    Piecewise constant: p_init until 10 of 10,000 queries, then halved after 10, 50, 200,
    500, 1000, 2000, 4000, 6000 and 8000; for n_queries != 10,000 the query index is
    rescaled to i * 10,000 / n_queries first.

    Args:
        i: the update's index, 0 <= i < n_queries - 1.
        n_queries: the attack's budget (the start counts as one query).
        p_init: the fraction at the start, in (0, 1].

    Returns:
        The fraction p; the square's side is about sqrt(p * H * W).
    """
    scaled = i * _SCHEDULE_QUERIES // n_queries
    return p_init / 2 ** bisect_left(_HALVINGS_AFTER, scaled)


def window_side(p: float, height: int, width: int) -> int:
    """The side s of the square window that changes a fraction ~p of an H x W image.

    s = round(sqrt(p * H * W)), kept in [1, min(H, W) - 1] as in the paper's code so a
    window never covers a whole side (it has at least two positions).
    """
    side = round(math.sqrt(p * height * width))
    return max(1, min(side, min(height, width) - 1))


def _draw_signs(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform +-1 in like's dtype and device, drawn on the generator's device."""
    device = generator.device if generator is not None else like.device
    bits = torch.randint(0, 2, shape, generator=generator, device=device)
    return (2 * bits - 1).to(device=like.device, dtype=like.dtype)


def _draw_offsets(high: int, count: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``count`` integers uniform in [0, high), on like's device."""
    device = generator.device if generator is not None else like.device
    return torch.randint(0, high, (count,), generator=generator, device=device).to(like.device)


def _windows(side: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One random side x side window per sample, as a mask (A, 1, H, W)."""
    batch, _, height, width = x.shape
    top = _draw_offsets(height - side + 1, batch, x, generator)[:, None]
    left = _draw_offsets(width - side + 1, batch, x, generator)[:, None]
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)
    in_rows = (rows >= top) & (rows < top + side)  # (A, H)
    in_cols = (cols >= left) & (cols < left + side)  # (A, W)
    return in_rows[:, None, :, None] & in_cols[:, None, None, :]


def _propose(
    x_nat: Tensor,
    x_best: Tensor,
    eps: float,
    side: int,
    bounds: tuple[float, float],
    generator: torch.Generator | None,
) -> Tensor:
    """x_best with one square window per sample moved to a fresh corner of the ball, (A, ...).

    The paper adds +-2*eps per channel on the window and projects back onto the eps-ball,
    which sets the window to x_nat +- eps; outside the window nothing moves.
    """
    batch, channels = x_nat.shape[:2]
    window = _windows(side, x_nat, generator)
    proposal = x_best.clone()
    stale = torch.arange(batch, device=x_nat.device)  # rows whose proposal is still x_best
    for _ in range(_MAX_DRAWS):
        signs = _draw_signs((stale.numel(), channels, 1, 1), x_nat, generator)
        corner = (x_nat[stale] + eps * signs).clamp(*bounds)
        proposal[stale] = torch.where(window[stale], corner, x_best[stale])
        # Exact comparison is safe: x_best's window pixels come from the same formula.
        unchanged = (proposal[stale] == x_best[stale]).flatten(1).all(dim=1)
        stale = stale[unchanged]
        if stale.numel() == 0:
            break
    return proposal


def _fooled(logits: Tensor, y: Tensor, targeted: bool) -> Tensor:
    prediction = logits.argmax(dim=1)
    return prediction == y if targeted else prediction != y


def _search(
    evaluate: Evaluate,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    n_queries: int,
    p_init: float,
    targeted: bool,
    bounds: tuple[float, float],
    generator: torch.Generator | None,
) -> Tensor:
    """The random search: the per-sample first point that fools, else the best objective."""
    _, channels, height, width = x.shape
    # Vertical stripes: one random sign per channel and column, the same down each column.
    stripes = _draw_signs((x.shape[0], channels, 1, width), x, generator)
    x_best = (x + eps * stripes).clamp(*bounds)
    best, logits = evaluate(x_best, y)
    fooled = _fooled(logits, y, targeted)
    for i in range(n_queries - 1):
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        side = window_side(p_schedule(i, n_queries, p_init), height, width)
        candidate = _propose(x[idx], x_best[idx], eps, side, bounds, generator)
        objective, logits = evaluate(candidate, y[idx])
        now_fooled = _fooled(logits, y[idx], targeted)
        # A fooling proposal wins even if its loss is lower (possible with ce, not margin).
        accept = now_fooled | (objective > best[idx])
        rows = idx[accept]
        x_best[rows] = candidate[accept]
        best[rows] = objective[accept]
        fooled[rows] = now_fooled[accept]
    return x_best


def _check_norm(value: object) -> Norm:
    """Square's windows move to corners of the linf ball: linf is the only norm."""
    if value != Norm.LINF:
        raise ValueError(
            f"norm must be 'linf' (the Square attack searches the linf ball); got {value!r}"
        )
    return Norm.LINF


def _check_loss(value: object) -> object:
    resolve_loss(value)
    return value


_CHECKS = {
    "norm": _check_norm,
    "n_queries": lambda value: check_positive_int("n_queries", value),
    "p_init": lambda value: check_fraction("p_init", value, allow_zero=False),
    "loss": _check_loss,
    "targeted": lambda value: check_bool("targeted", value),
    "bounds": check_bounds,
}


def validate_options(**options: object) -> None:
    """Check square's options (any of its keyword arguments but the generator) by the
    rules :func:`square` applies, without a model or data.

    Raises:
        TypeError, ValueError: as :func:`square` would, naming the argument and the value.
    """
    check_options(_CHECKS, options, "square")


def square(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str | Norm = "linf",
    n_queries: int = 1000,
    p_init: float = 0.8,
    loss: str | Loss | LossFn = "margin",
    targeted: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    generator: torch.Generator | int | None = None,
) -> Tensor:
    """Square attack: random square updates on a corner of the linf ball, kept when they help.

    Starts from vertical stripes (x +- eps per column and channel); each query moves one
    random square window per sample to x +- eps (a random sign per channel) and keeps the
    move where the loss rises or the model is fooled. A sample stops once fooled. No
    gradient is taken: the model runs under ``torch.no_grad``.

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean images (B, C, H, W) in pixel space within ``bounds``.
        y: true labels (B,), or target labels when ``targeted``.
        eps: radius of the linf ball (e.g. 8/255 on CIFAR).
        norm: "linf", the only one (accepted for the calling shape every attack shares;
            any other value is a ValueError).
        n_queries: model evaluations per sample, the starting point included.
        p_init: the fraction of pixels the first updates change; it shrinks on the
            schedule of :func:`p_schedule`.
        loss: "margin" (the paper's), "ce", "dlr", or (logits, y) -> (B,) to maximise.
        targeted: drive the prediction to y instead of away from it.
        bounds: valid input range (low, high).
        generator: source of the stripes, windows and signs, for reproducible attacks: a
            torch.Generator, or an int seed (a fresh generator on x's device).

    Returns:
        (B, C, H, W) adversarial images, x's dtype and device: per sample the first point
        that fools the model, else the one with the highest loss (lowest margin).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    eps = check_non_negative("eps", eps)
    validate_options(norm=norm, n_queries=n_queries, p_init=p_init, bounds=bounds)
    p_init = float(p_init)
    bounds = check_bounds(bounds)
    check_inputs(x, y, bounds)
    if x.dim() != 4:
        raise ValueError(
            f"x must be a batch of images (B, C, H, W) for square windows; "
            f"got shape {tuple(x.shape)}"
        )
    generator = resolve_generator(generator, x)
    warn_if_eps_covers_bounds(eps, "linf", bounds, x[0].numel())
    evaluate = make_evaluate(model, loss, targeted)
    with torch.no_grad(), eval_mode(model):
        if eps == 0.0:
            # The ball is the point itself; one forward still checks the logits' shape and
            # that the labels are in [0, K), as any other eps would.
            evaluate(x.detach(), y.detach().long())
            return x.detach().clamp(*bounds)
        x_adv = _search(
            evaluate,
            x.detach(),
            y.detach().long(),
            eps,
            n_queries=n_queries,
            p_init=p_init,
            targeted=targeted,
            bounds=bounds,
            generator=generator,
        )
    return x_adv
