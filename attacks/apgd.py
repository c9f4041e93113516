"""Auto-PGD (Croce and Hein 2020): PGD with momentum and a step size that halves itself.

APGD is the shared loop of :mod:`attacks.descent` with one more step rule, :class:`APGDStep`.
The step rule follows AutoAttack's reference implementation (``APGDAttack`` in
``autoattack/autopgd_base.py``) rather than the paper's prose where the two differ: the
check schedule, how rises of the loss are counted, when the stall test applies. On the same
start, model and budget, one run gives each sample the same best loss as the reference
(tests/attacks/test_apgd.py checks this against a transcription of the reference).

The random start, restarts, EOT, the per-sample best iterate and early stopping are the
loop's, exactly as for :func:`attacks.pgd`; see :func:`apgd` for where they differ from
AutoAttack.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn

from attacks._checks import check_fraction, check_non_negative, check_positive_int
from attacks._driver import LOOP_CHECKS, Transform, check_loop_options, gradient_attack
from attacks.descent import Callback, Feasible, Select
from attacks.losses import Loss, LossFn
from attacks.norms import Norm

# AutoAttack's check schedule, in hundredths of the budget n: the first window is
# max(int(0.22 n), 1) steps, and each later one is max(int(0.03 n), 1) shorter, down to
# max(int(0.06 n), 1). Integer hundredths agree with the reference's float int(0.22 * n)
# for every n up to 200000 (checked), without relying on the rounding of 0.22 * n.
_FIRST_WINDOW, _WINDOW_SHRINK, _MIN_WINDOW = 22, 3, 6


def _fraction_of(steps: int, hundredths: int) -> int:
    """max(int(hundredths / 100 * steps), 1), in integers."""
    return max(hundredths * steps // 100, 1)


def checkpoints(steps: int) -> tuple[int, ...]:
    """The iterates x_w after which APGD decides whether to halve its step size.

    AutoAttack's schedule: the first check comes after k_1 = max(int(0.22 n), 1) steps,
    each later one k_{j+1} = max(k_j - max(int(0.03 n), 1), max(int(0.06 n), 1)) steps
    after the previous one, with n = ``steps``. Only the checks with w < n are returned:
    the reference also checks at w = n when the windows end there, but that only changes
    a step that is never taken.

    Args:
        steps: the gradient steps of one restart (>= 1).

    Returns:
        The increasing iterates w_1 < w_2 < ..., e.g. (22, 41, 57, 70, 80, 87, 93, 99)
        for 100 steps and (2, 3, 4, 5, 6, 7, 8, 9) for 10.
    """
    steps = check_positive_int("steps", steps)
    shrink = _fraction_of(steps, _WINDOW_SHRINK)
    least = _fraction_of(steps, _MIN_WINDOW)
    window = _fraction_of(steps, _FIRST_WINDOW)
    marks: list[int] = []
    mark = window
    while mark < steps:
        marks.append(mark)
        window = max(window - shrink, least)
        mark += window
    return tuple(marks)


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    """A per-sample mask (B,) shaped (B, 1, ..., 1) to select whole rows of ``like``."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


class APGDStep:
    """APGD's step rule, as AutoAttack implements it: momentum, and a per-sample step size
    halved when progress stalls.

    The rule sees x_0, x_1, ... in order (x_k is the iterate after k steps) with the
    objective f and gradient there, and proposes x_{k+1}. With eta the sample's step size
    and alpha = ``momentum``:
        z = P(x_k + eta * d(grad)),  x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))
    where d is the norm's ascent direction and P the projection onto the feasible set. The
    first step, from x_0, has no momentum: x_1 = z. eta starts at 2 * eps.

    At each check w of :func:`checkpoints` (after x_w is scored; AutoAttack's iteration i
    steps to x_{i+1} and then checks, so its check "at i" is the one at w = i + 1 here)
    a sample halves eta when either holds, and then takes its next step from its best
    point x_max so far, with the gradient there, in place of x_w (x_{k-1} in the momentum
    term is then the point the previous step started from):

    1. oscillation: at most ``rho`` * k_j of the k_j steps since the previous check raised
       the objective, a step from x_{i-1} to x_i counting as a rise when f(x_i) > f(x_{i-1})
       -- the objective of the iterates themselves, also across a restart from x_max. The
       history starts at zeros: the first window's first step counts when f(x_1) > 0.
    2. stall: the previous check did not halve eta and the best objective f_max has not
       strictly risen since the previous check. Not tested at the first check.

    f_max and x_max start at x_0 and move on a strictly higher objective. These are the
    rules of ``APGDAttack.attack_single_run`` in AutoAttack's ``autopgd_base.py`` (Croce
    and Hein 2020, with ``loss_steps``, ``reduced_last_check`` and
    ``loss_best_last_check``); the paper's own text differs in details (checkpoints at
    ceil(p_j n), fewer rises than rho, rises judged against the restart point).

    A fresh rule is built for each restart. Its best point is its own: the loop keeps the
    best iterate that is returned. ``keep`` drops the state of samples that leave.
    """

    def __init__(
        self, feasible: Feasible, steps: int, *, rho: float = 0.75, momentum: float = 0.75
    ) -> None:
        self.feasible = feasible
        self.rho = rho
        self.momentum = momentum
        marks = checkpoints(steps)
        # Each check with its window: the number of steps since the previous one (w_0 = 0).
        self.windows = {b: b - a for a, b in pairwise((0, *marks))}
        self.k = 0  # the index of the iterate the next call receives
        # Per-sample state (rows of the active samples), created on the first call.
        self.eta = torch.empty(0)  # (A,) step sizes
        self.x_prev = torch.empty(0)  # (A, ...) the point the last step started from
        self.f_last = torch.empty(0)  # (A,) the objective of the last iterate (0 before x_1)
        self.x_max = torch.empty(0)  # (A, ...) the best point so far
        self.grad_max = torch.empty(0)  # (A, ...) the gradient there
        self.f_max = torch.empty(0)  # (A,) the objective there
        self.rises = torch.empty(0)  # (A,) steps that raised the objective, this window
        self.f_max_at_check = torch.empty(0)  # (A,) f_max at the previous check
        self.halved_at_check = torch.empty(0)  # (A,) whether eta was halved there

    def step(self, x_k: Tensor, x_nat: Tensor, grad: Tensor, objective: Tensor) -> Tensor:
        objective = objective.detach()
        if self.k == 0:
            self._start(x_k, grad, objective)
        else:
            self.rises += objective > self.f_last
            self.f_last = objective
            better = objective > self.f_max
            self.f_max = torch.where(better, objective, self.f_max)
            self.x_max[better] = x_k[better]
            self.grad_max[better] = grad[better]

        x_from, grad_from = x_k, grad
        window = self.windows.get(self.k)
        if window is not None:
            halve = self._check(window)
            if bool(halve.any()):
                self.eta = torch.where(halve, self.eta / 2, self.eta)
                x_from = torch.where(_rows(halve, x_k), self.x_max, x_k)
                grad_from = torch.where(_rows(halve, grad), self.grad_max, grad)

        eta = _rows(self.eta, x_from)
        direction = self.feasible.geometry.ascent_direction(grad_from)
        z = self.feasible(x_nat, (x_from - x_nat) + eta * direction)
        if self.k == 0:
            x_next = z
        else:
            alpha = self.momentum
            moved = alpha * (z - x_from) + (1.0 - alpha) * (x_from - self.x_prev)
            x_next = self.feasible(x_nat, (x_from - x_nat) + moved)
        self.x_prev = x_from
        self.k += 1
        return x_next

    def keep(self, mask: Tensor) -> None:
        if self.k == 0:
            return  # no state yet
        for name in (
            "eta",
            "x_prev",
            "f_last",
            "x_max",
            "grad_max",
            "f_max",
            "rises",
            "f_max_at_check",
            "halved_at_check",
        ):
            setattr(self, name, getattr(self, name)[mask])

    def _start(self, x_0: Tensor, grad: Tensor, objective: Tensor) -> None:
        batch = x_0.shape[0]
        self.eta = torch.full((batch,), 2.0 * self.feasible.eps, dtype=x_0.dtype, device=x_0.device)
        self.x_max, self.grad_max, self.f_max = x_0.clone(), grad.clone(), objective.clone()
        # AutoAttack's loss history starts at zeros: f(x_1) is compared with 0, not f(x_0).
        self.f_last = torch.zeros_like(objective)
        self.rises = torch.zeros(batch, dtype=torch.long, device=x_0.device)
        self.f_max_at_check = objective.clone()
        # As if the step size had been halved at w_0: no stall test at the first check.
        self.halved_at_check = torch.ones(batch, dtype=torch.bool, device=x_0.device)

    def _check(self, window: int) -> Tensor:
        """Which samples halve their step size at this check, (A,) bool."""
        oscillating = self.rises <= self.rho * window
        stalled = ~self.halved_at_check & (self.f_max <= self.f_max_at_check)
        halve = oscillating | stalled
        self.rises = torch.zeros_like(self.rises)
        self.f_max_at_check = self.f_max.clone()
        self.halved_at_check = halve
        return halve


_CHECKS = {
    **LOOP_CHECKS,
    "rho": lambda value: check_fraction("rho", value),
    "momentum": lambda value: check_fraction("momentum", value),
}


def validate_options(**options: object) -> None:
    """Check apgd's options (any of its keyword arguments but the generator and the
    callback) by the rules :func:`apgd` applies, without a model or data.

    A benchmark config is checked with this before any work starts.

    Raises:
        TypeError, ValueError: as :func:`apgd` would, naming the argument and the value.
    """
    check_loop_options(_CHECKS, options, "apgd")


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
    early_stop: bool | None = None,
    generator: torch.Generator | int | None = None,
    select: str | Select | None = None,
    random_start: bool = True,
    rho: float = 0.75,
    momentum: float = 0.75,
    callback: Callback | None = None,
    transform: Transform | None = None,
) -> Tensor:
    """Auto-PGD: gradient ascent with momentum and a self-tuning step size, no step size to pick.

    Each restart runs AutoAttack's APGD step rule (:class:`APGDStep`): the first step has
    no momentum, eta starts at 2 * eps, and at the checks of :func:`checkpoints` a sample
    halves eta and resumes from its best point when its loss rose in at most ``rho`` of the
    steps since the previous check, or when the previous check did not halve and its best
    loss has not risen since.

    Where this differs from AutoAttack's ``APGDAttack`` (linf and l2):

    - The answer: per sample the first iterate that fools the model, else the highest-loss
      one ("first_fooling"), or the highest-loss one ("max_loss"); AutoAttack returns the
      last fooling iterate, else the clean input (or with ``best_loss=True`` the
      highest-loss point, which may be the start x_0; ours is always an iterate taken
      after a step, x_1..x_n).
    - Starts: AutoAttack draws a linf start uniformly in the cube and rescales it so its
      largest coordinate is eps, and an l2 start on the sphere; ours are uniform inside the
      ball (or x itself with ``random_start=False``). Restarts after the first attack only
      samples not settled yet, as AutoAttack's do (all samples under "max_loss").
    - Early stop (off in AutoAttack) drops fooled samples from the batch; the others'
      trajectories are unchanged.
    - EOT averages the loss as well as the gradient over ``eot_samples`` passes; AutoAttack
      averages the gradient but keeps the last pass's loss for its rules and best point.
    - l2: the ascent direction and the projection are :mod:`attacks.norms`' (g / max(|g|,
      1e-12), and delta * min(eps / |delta|, 1)); AutoAttack divides by |g| + 1e-12 and
      rescales by min(eps, |delta|) / (|delta| + 1e-12) also inside the ball, and projects
      its momentum-free first step twice. The results differ by about 1e-12 relative, more
      only where the gradient itself is about 1e-12 (DLR's flat top) or where the rules
      compare losses equal up to rounding (an iterate at rest on the sphere).
    - The loss is computed in the input's dtype (AutoAttack casts to float32); targeted
      attacks maximise minus the loss towards ``y`` rather than AutoAttack's targeted DLR
      over several target classes; bounds other than [0, 1] are allowed.

    Args:
        model: returns logits (B, K); run in eval mode, its training flags restored after.
        x: clean inputs (B, ...) in pixel space within ``bounds``.
        y: true labels (B,), or target labels when ``targeted``.
        eps: radius of the threat model's ball (e.g. 8/255 for linf on CIFAR).
        norm: "linf" or "l2".
        steps: gradient steps per restart; the checks scale with it (see
            :func:`checkpoints`).
        loss: "ce", "dlr" (the paper's two), "margin", or (logits, y) -> (B,) to maximise.
        restarts: independent runs; each later one attacks only samples not yet settled.
        targeted: drive the prediction to y instead of away from it.
        bounds: valid input range (low, high).
        eot_samples: forward passes averaged per gradient, for stochastic models and for
            a random ``transform`` (one fresh transformation per pass).
        early_stop: stop updating samples once fooled, under select="first_fooling": the
            result is the same, only the compute is saved (the step rule drops the state
            of the samples that leave). None (default): True unless the model is
            stochastic, a ``transform`` is given or ``select="max_loss"``. True with
            ``select="max_loss"`` is an error.
        generator: source of the random start, for reproducible attacks: a
            torch.Generator, or an int seed (a fresh generator on x's device). A
            ``transform`` draws from a generator of its own seeded from this one's state.
        select: "first_fooling" (the first iterate that fools, else the highest-loss
            one) or "max_loss" (the highest-loss iterate: for adversarial training, and
            for stochastic models, whose single noisy verdict may not hold). None
            (default): "first_fooling" when ``early_stop=True``, else "max_loss" (and no
            early stop) under a ``transform``, else chosen by the model: "max_loss" (and
            no early stop) for a stochastic one, "first_fooling" (with early stop) for a
            deterministic one; see :func:`attacks.pgd` and
            :func:`attacks._driver.resolve_selection` for how a model is judged
            stochastic.
        random_start: start uniformly inside the ball rather than at x.
        rho: at a check, a sample halves its step size when its loss rose in at most this
            fraction of the steps since the previous check (AutoAttack's rho).
        momentum: the weight alpha, in [0, 1], of the new gradient step against the
            previous move (1 means no momentum; AutoAttack fixes it at 0.75).
        callback: called as ``callback(info)`` with an :class:`attacks.StepInfo` on each
            restart's start (step 0) and after each step: the rows scored, their loss and
            whether each is fooled, for plotting loss trajectories and first-fooling steps.
            It receives copies and cannot change the result.
        transform: expectation over transformation: a differentiable random transformation
            (x (B, C, H, W), generator) -> x' (B, C, H, W) drawn from the generator it is
            given; every forward pass runs the model on transform(x_k, g) with a fresh
            draw, so the loss and gradient that drive the step rule (and its checks) at
            x_k are averages over ``eot_samples`` draws. Seeded, checked and resolved as
            in :func:`attacks.pgd`. None (default): no transformation.

    Returns:
        (B, ...) adversarial inputs, x's dtype and device: per sample the iterate chosen by
        ``select``.
    """
    eps = check_non_negative("eps", eps)
    validate_options(
        norm=norm,
        steps=steps,
        loss=loss,
        restarts=restarts,
        bounds=bounds,
        eot_samples=eot_samples,
        early_stop=early_stop,
        select=select,
        rho=rho,
        momentum=momentum,
        transform=transform,
    )
    rho, momentum = float(rho), float(momentum)
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
        callback=callback,
        transform=transform,
    )
