"""A plain transcription of AutoAttack's APGD, to test `attacks.apgd` against.

Croce and Hein (2020), ``autoattack/autopgd_base.py``, ``APGDAttack.attack_single_run``,
linf and l2 only, rewritten as scalar bookkeeping per sample in float64 numpy. It shares no
code with :mod:`attacks`: the projection, the ascent direction, the two losses, the check
schedule and the halving rules are written out again here, in the reference's own
arithmetic (its 1e-12 guards included). Only the model's forward and backward pass are
batched, one per iteration, for speed; everything else is per sample.

The reference's conventions, kept on purpose:
- iteration i (0-based) steps from x_i to x_{i+1} and then scores x_{i+1}, so a check
  "at iteration i" judges the iterates up to x_{i+1} and changes the step from x_{i+1};
- the loss history ``loss_steps`` has one slot per iteration and starts as zeros, so the
  first window's first comparison is loss(x_1) > 0 (Python's index -1 reads the last
  slot, still zero, as the reference's tensor index does);
- the best point starts at x_0 and moves only on a strictly higher loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

_GUARD = 1e-12  # the reference's guard in its normalisations and in DLR


def schedule(n_iter: int) -> list[int]:
    """The iterates x_w after which the reference runs a check (w = i + 1 at iteration i).

    Checks with w = n_iter are left out: they change a step that is never taken.
    """
    k = max(int(0.22 * n_iter), 1)
    shrink = max(int(0.03 * n_iter), 1)
    floor = max(int(0.06 * n_iter), 1)
    marks, counter = [], 0
    for i in range(n_iter):
        counter += 1
        if counter == k:
            if i + 1 < n_iter:
                marks.append(i + 1)
            k = max(k - shrink, floor)
            counter = 0
    return marks


def ce_loss(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """The reference's DLR: -(z_y - best other) / (z_(1) - z_(3) + 1e-12), ascending sort."""
    ordered, order = logits.sort(dim=1)
    label_on_top = (order[:, -1] == y).to(logits.dtype)
    z_y = logits[torch.arange(logits.shape[0]), y]
    best_other = ordered[:, -2] * label_on_top + ordered[:, -1] * (1.0 - label_on_top)
    return -(z_y - best_other) / (ordered[:, -1] - ordered[:, -3] + _GUARD)


LOSSES = {"ce": ce_loss, "dlr": dlr_loss}


def _length(v: np.ndarray) -> float:
    return float(np.sqrt((v**2).sum()))


def _project(point: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """The reference's projection of ``point`` onto the eps-ball around x, then [0, 1]."""
    if norm == "linf":
        return np.clip(np.minimum(np.maximum(point, x - eps), x + eps), 0.0, 1.0)
    d = point - x
    length = _length(d)
    return np.clip(x + d / (length + _GUARD) * min(eps, length), 0.0, 1.0)


def _direction(grad: np.ndarray, norm: str) -> np.ndarray:
    if norm == "linf":
        return np.sign(grad)
    return grad / (_length(grad) + _GUARD)


@dataclass
class SampleRun:
    """One sample's run: the loss of each iterate x_0..x_n, and what the rules did."""

    losses: list[float] = field(default_factory=list)  # loss(x_0), ..., loss(x_n)
    best_loss: float = float("-inf")  # the reference's loss_best: over x_0..x_n
    halved_at: list[int] = field(default_factory=list)  # the checks w that halved
    stall_only_at: list[int] = field(default_factory=list)  # ... by the stall test alone
    step_size: float = 0.0  # at the end
    # The smallest relative gap |a - b| / max(|a|, |b|, 1) between two different losses
    # the rules compared (a rise, a new best, the stall test). Exact ties are left out:
    # they come from identical points, and any arithmetic decides them alike.
    smallest_gap: float = float("inf")

    def compare(self, a: float, b: float) -> None:
        if a != b:
            self.smallest_gap = min(self.smallest_gap, abs(a - b) / max(abs(a), abs(b), 1.0))

    def decided_by_margins(self, margin: float = 1e-9) -> bool:
        """Whether every comparison of the rules had a margin no rounding can flip.

        A comparison of two losses equal up to rounding (an iterate at rest on the l2
        sphere, say) is decided by the last bits of the arithmetic, which no independent
        implementation reproduces.
        """
        return self.smallest_gap > margin


@dataclass
class _Sample:
    """The reference's variables for one sample."""

    x: np.ndarray  # the clean input
    x_adv: np.ndarray
    grad: np.ndarray
    x_old: np.ndarray  # the point the previous step started from
    x_best: np.ndarray
    grad_best: np.ndarray
    loss_best: float
    loss_steps: list[float]
    step_size: float
    loss_best_last_check: float
    reduced_last_check: bool
    run: SampleRun


def run_batch(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str,
    loss: str,
    n_iter: int,
    rho: float = 0.75,
) -> list[SampleRun]:
    """One run of AutoAttack's APGD from x itself (no random start) for each row of x.

    Args:
        model: logits (B, K), float64.
        x: inputs (B, ...) in [0, 1], float64.
        y: labels (B,).
        eps: the ball's radius.
        norm: "linf" or "l2".
        loss: "ce" or "dlr".
        n_iter: the iteration budget n.
        rho: the oscillation threshold.
    """
    criterion = LOSSES[loss]

    def losses_and_grads(points: list[np.ndarray]) -> tuple[list[float], list[np.ndarray]]:
        batch = torch.from_numpy(np.stack(points)).requires_grad_(True)
        values = criterion(model(batch), y)
        (grads,) = torch.autograd.grad(values.sum(), batch)
        return values.detach().tolist(), list(grads.numpy())

    clean = list(x.detach().numpy())
    starts = [np.clip(row, 0.0, 1.0) for row in clean]
    values, grads = losses_and_grads(starts)
    samples = [
        _Sample(
            x=row,
            x_adv=start,
            grad=grad,
            x_old=start.copy(),
            x_best=start.copy(),
            grad_best=grad.copy(),
            loss_best=value,
            loss_steps=[0.0] * n_iter,
            step_size=2.0 * eps,
            loss_best_last_check=value,
            reduced_last_check=True,  # the reference's ones: no stall test at the first check
            run=SampleRun(losses=[value]),
        )
        for row, start, value, grad in zip(clean, starts, values, grads, strict=True)
    ]

    k = max(int(0.22 * n_iter), 1)
    shrink = max(int(0.03 * n_iter), 1)
    floor = max(int(0.06 * n_iter), 1)
    counter = 0
    for i in range(n_iter):
        a = 0.75 if i > 0 else 1.0  # no momentum in the first step
        for s in samples:
            momentum = s.x_adv - s.x_old
            s.x_old = s.x_adv.copy()
            z = _project(s.x_adv + s.step_size * _direction(s.grad, norm), s.x, eps, norm)
            s.x_adv = _project(s.x_adv + (z - s.x_adv) * a + momentum * (1 - a), s.x, eps, norm)

        values, grads = losses_and_grads([s.x_adv for s in samples])
        counter += 1
        check = counter == k
        for s, current, grad in zip(samples, values, grads, strict=True):
            s.grad = grad
            s.run.losses.append(current)
            s.loss_steps[i] = current
            s.run.compare(current, s.loss_best)
            if current > s.loss_best:
                s.x_best, s.grad_best, s.loss_best = s.x_adv.copy(), grad.copy(), current
            if not check:
                continue
            rises = 0
            for c in range(k):
                later, earlier = s.loss_steps[i - c], s.loss_steps[i - c - 1]
                s.run.compare(later, earlier)
                rises += later > earlier
            oscillating = rises <= k * rho
            if not s.reduced_last_check:
                s.run.compare(s.loss_best_last_check, s.loss_best)
            stalled = not s.reduced_last_check and s.loss_best_last_check >= s.loss_best
            halve = oscillating or stalled
            s.reduced_last_check = halve
            s.loss_best_last_check = s.loss_best
            if halve:
                s.step_size /= 2.0
                s.x_adv, s.grad = s.x_best.copy(), s.grad_best.copy()
                s.run.halved_at.append(i + 1)
                if not oscillating:
                    s.run.stall_only_at.append(i + 1)
        if check:
            k = max(k - shrink, floor)
            counter = 0

    for s in samples:
        s.run.best_loss = s.loss_best
        s.run.step_size = s.step_size
    return [s.run for s in samples]
