"""Auto-PGD (Croce and Hein 2020): PGD with momentum and a step size that halves itself.

APGD is the shared loop of :mod:`attacks.descent` with one more step rule, :class:`APGDStep`.
The random start, restarts, EOT, the per-sample best iterate and early stopping are the
loop's, exactly as for :func:`attacks.pgd`.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from attacks._checks import check_fraction, check_non_negative, check_positive_int
from attacks._driver import gradient_attack
from attacks.descent import Feasible, Select
from attacks.losses import Loss, LossFn
from attacks.norms import Norm

# The checkpoint schedule in hundredths of the budget: p_1 = 0.22, and each gap shrinks by
# 0.03 down to 0.06. Hundredths keep it exact: in floating point 0.22 * 100 is
# 22.000000000000004, whose ceiling would move the first checkpoint to 23.
_FIRST_GAP, _GAP_SHRINK, _MIN_GAP = 22, 3, 6


def checkpoints(steps: int) -> tuple[int, ...]:
    """The iterations w_j at which APGD decides whether to halve its step size.

    p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) and
    w_j = ceil(p_j * steps). Only the w_j in (0, steps) are returned: a checkpoint at the
    last iterate has no step left to act on, and for small budgets repeats are dropped.

    Args:
        steps: the gradient steps of one restart (>= 1).

    Returns:
        The increasing iterations w_1 < w_2 < ..., e.g. (22, 41, 57, 70, 80, 87, 93, 99)
        for 100 steps.
    """
    steps = check_positive_int("steps", steps)
    marks: list[int] = []
    position, gap = 0, _FIRST_GAP
    while True:
        position += gap
        mark = -(-position * steps // 100)  # ceil(position / 100 * steps), in integers
        if mark >= steps:
            return tuple(marks)
        if not marks or mark > marks[-1]:
            marks.append(mark)
        gap = max(gap - _GAP_SHRINK, _MIN_GAP)


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    """A per-sample mask (B,) shaped (B, 1, ..., 1) to select whole rows of ``like``."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


class APGDStep:
    """APGD's step rule: momentum, and a per-sample step size halved when progress stalls.

    From x_k, with eta the sample's step size and alpha = ``momentum``:
        z = P(x_k + eta * d(grad)),  x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))
    where d is the norm's ascent direction and P the projection onto the feasible set; the
    first step has no momentum. eta starts at 2 * eps. At each checkpoint w_j it is halved
    for a sample whose objective rose in fewer than ``rho`` of the steps since the last
    checkpoint, or whose step size and best objective are both unchanged since then; such a
    sample then steps from its best point x_max (with the gradient there) instead of x_k.

    The rule is built fresh for each restart and sees iterates x_0, x_1, ... in order, so
    it counts the iterations itself. Its best point is its own: the loop keeps the best
    iterate that is returned.
    """

    def __init__(
        self, feasible: Feasible, steps: int, *, rho: float = 0.75, momentum: float = 0.75
    ) -> None:
        self.feasible = feasible
        self.rho = rho
        self.momentum = momentum
        marks = checkpoints(steps)
        # Each checkpoint with the number of steps since the previous one (w_0 = 0).
        self.windows = {b: b - a for a, b in pairwise((0, *marks))}
        self.k = 0  # the index of the iterate the next call receives
        # Per-sample state (rows of the active samples), created on the first call.
        self.eta = torch.empty(0)  # (A,) step sizes
        self.x_prev = torch.empty(0)  # (A, ...) the point the last step started from
        self.f_prev = torch.empty(0)  # (A,) the objective there
        self.x_max = torch.empty(0)  # (A, ...) the best point so far
        self.grad_max = torch.empty(0)  # (A, ...) the gradient there
        self.f_max = torch.empty(0)  # (A,) the objective there
        self.increases = torch.empty(0)  # (A,) steps that raised the objective, this window
        self.f_max_at_check = torch.empty(0)  # (A,) f_max at the last checkpoint
        self.halved_at_check = torch.empty(0)  # (A,) whether eta was halved there

    def step(self, x_k: Tensor, x_nat: Tensor, grad: Tensor, objective: Tensor) -> Tensor:
        objective = objective.detach()
        if self.k == 0:
            self._start(x_k, grad, objective)
        else:
            self.increases += objective > self.f_prev
            better = objective > self.f_max
            self.f_max = torch.where(better, objective, self.f_max)
            self.x_max[better] = x_k[better]
            self.grad_max[better] = grad[better]

        x_from, grad_from, f_from = x_k, grad, objective
        window = self.windows.get(self.k)
        if window is not None:
            halve = self._checkpoint(window)
            if bool(halve.any()):
                self.eta = torch.where(halve, self.eta / 2, self.eta)
                x_from = torch.where(_rows(halve, x_k), self.x_max, x_k)
                grad_from = torch.where(_rows(halve, grad), self.grad_max, grad)
                f_from = torch.where(halve, self.f_max, objective)

        eta = _rows(self.eta, x_from)
        direction = self.feasible.geometry.ascent_direction(grad_from)
        z = self.feasible(x_nat, (x_from - x_nat) + eta * direction)
        if self.k == 0:
            x_next = z
        else:
            alpha = self.momentum
            moved = alpha * (z - x_from) + (1.0 - alpha) * (x_from - self.x_prev)
            x_next = self.feasible(x_nat, (x_from - x_nat) + moved)
        self.x_prev, self.f_prev = x_from, f_from
        self.k += 1
        return x_next

    def keep(self, mask: Tensor) -> None:
        if self.k == 0:
            return  # no state yet
        for name in (
            "eta",
            "x_prev",
            "f_prev",
            "x_max",
            "grad_max",
            "f_max",
            "increases",
            "f_max_at_check",
            "halved_at_check",
        ):
            setattr(self, name, getattr(self, name)[mask])

    def _start(self, x_0: Tensor, grad: Tensor, objective: Tensor) -> None:
        batch = x_0.shape[0]
        self.eta = torch.full((batch,), 2.0 * self.feasible.eps, dtype=x_0.dtype, device=x_0.device)
        self.x_max, self.grad_max, self.f_max = x_0.clone(), grad.clone(), objective.clone()
        self.increases = torch.zeros(batch, dtype=torch.long, device=x_0.device)
        self.f_max_at_check = objective.clone()
        # eta^(w_0) = eta^(w_1) holds trivially, so the stall test applies from w_1 on.
        self.halved_at_check = torch.zeros(batch, dtype=torch.bool, device=x_0.device)

    def _checkpoint(self, window: int) -> Tensor:
        """Which samples halve their step size at this checkpoint, (A,) bool."""
        oscillating = self.increases < self.rho * window
        stalled = ~self.halved_at_check & (self.f_max <= self.f_max_at_check)
        halve = oscillating | stalled
        self.increases = torch.zeros_like(self.increases)
        self.f_max_at_check = self.f_max.clone()
        self.halved_at_check = halve
        return halve


def apgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str | Norm = "linf",
    steps: int = 100,
    loss: str | Loss | LossFn = "ce",
    restarts: int = 1,
    targeted: bool = False,
    bounds: tuple[float, float] = (0.0, 1.0),
    eot_samples: int = 1,
    early_stop: bool = False,
    generator: torch.Generator | None = None,
    select: str | Select = "first_fooling",
    random_start: bool = True,
    rho: float = 0.75,
    momentum: float = 0.75,
) -> Tensor:
    """Auto-PGD: gradient ascent with momentum and a self-tuning step size, no step size to pick.

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean inputs (B, ...) in pixel space within ``bounds``.
        y: true labels (B,), or target labels when ``targeted``.
        eps: radius of the threat model's ball (e.g. 8/255 for linf on CIFAR).
        norm: "linf" or "l2".
        steps: gradient steps per restart; the checkpoints scale with it (see
            :func:`checkpoints`).
        loss: "ce", "dlr" (the paper's two), "margin", or (logits, y) -> (B,) to maximise.
        restarts: independent runs; each later one attacks only samples not yet fooled.
        targeted: drive the prediction to y instead of away from it.
        bounds: valid input range (low, high).
        eot_samples: forward passes averaged per gradient, for stochastic models.
        early_stop: stop updating samples once fooled; the result is the same.
        generator: source of the random start, for reproducible attacks.
        select: "first_fooling" (the first iterate that fools, else the highest-loss
            one) or "max_loss" (the highest-loss iterate: for adversarial training, and
            for stochastic models, whose single noisy verdict may not hold).
        random_start: start uniformly inside the ball rather than at x.
        rho: a sample halves its step size at a checkpoint when its objective rose in
            fewer than this fraction of the steps since the previous one.
        momentum: the paper's alpha, in [0, 1]: the weight of the new gradient step
            against the previous move (1 means no momentum).

    Returns:
        (B, ...) adversarial inputs, x's dtype and device: per sample the first iterate
        that fools the model, else the one with the highest loss.
    """
    eps = check_non_negative("eps", eps)
    steps = check_positive_int("steps", steps)
    rho = check_fraction("rho", rho)
    momentum = check_fraction("momentum", momentum)
    return gradient_attack(
        model,
        x,
        y,
        eps,
        norm=norm,
        steps=steps,
        make_rule=lambda feasible: APGDStep(feasible, steps, rho=rho, momentum=momentum),
        random_start=random_start,
        restarts=restarts,
        targeted=targeted,
        loss=loss,
        bounds=bounds,
        eot_samples=eot_samples,
        early_stop=early_stop,
        generator=generator,
        select=select,
    )
