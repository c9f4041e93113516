"""The one optimisation loop behind every gradient attack (fgsm, pgd, and later apgd).

The loop owns what all of them share: the random start, the restarts, expectation
over transformation (EOT), the per-sample best iterate, early stopping and the
bookkeeping of which samples are still being attacked. What differs between
attacks is passed in: the geometry of the norm (random start, ascent direction,
projection) and a step rule that turns a gradient into the next iterate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import torch
from torch import Tensor, nn

from attacks.norms import Geometry

# evaluate(x (B, ...), y (B,)) -> (objective to maximise (B,), logits (B, K))
Evaluate = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class StepInfo:
    """What an attack's ``callback`` receives each time it scores its iterates.

    Called with ``step=0`` on the start x_0 of each restart (x itself, or the random
    start), then once per step k on the iterate x_k after k steps, for the rows whose
    x_k was scored. Under early stopping (the default for a deterministic model) a row is
    reported at the step whose iterate first fools the model, then leaves. Without early
    stopping a fooled row keeps stepping, but under ``select="first_fooling"`` its last
    iterate is not scored (it cannot win), so it is missing from the last call; under
    ``select="max_loss"`` every row is reported at every step.

    The tensors are copies: a callback may keep or change them without touching the attack,
    whose result is the same with or without a callback.

    Attributes:
        step: k, the number of steps taken to reach the scored iterate (0: the start).
        restart: which restart, from 0; later restarts attack only unsettled rows.
        active: (A,) int64, the rows of the batch scored at this step.
        loss: (A,) the attack's loss at x_k for those rows, detached, averaged over the EOT
            passes: an untargeted attack drives it up, a targeted one down (towards y).
        fooled: (A,) bool, whether x_k fools the model (predicts the target, if targeted).
    """

    step: int
    restart: int
    active: Tensor
    loss: Tensor
    fooled: Tensor


# callback(info) -> None, called once per scored step (see StepInfo)
Callback = Callable[[StepInfo], object]


class StepRule(Protocol):
    """Turns the gradient at the current iterate into the next one.

    A rule may hold per-sample state (momentum, adaptive step sizes); ``keep`` drops
    the rows of samples that leave the active set so the state stays aligned.
    """

    def step(self, x_k: Tensor, x_nat: Tensor, grad: Tensor, objective: Tensor) -> Tensor:
        """The next iterate (B, ...) inside the feasible set."""
        ...

    def keep(self, mask: Tensor) -> None:
        """Keep only the samples where ``mask`` (B,) is True."""
        ...


class Select(str, Enum):
    """Which iterate an attack returns per sample."""

    #: The first iterate that fools the model, else the highest-loss one (docs/architecture.md): the
    #: verdict of a deterministic model cannot change once fooled, so work can stop there.
    FIRST_FOOLING = "first_fooling"
    #: The highest-loss iterate, fooled or not: for adversarial training (Madry et al.), and
    #: for stochastic models, whose single noisy "fooled" verdict may not hold at evaluation.
    MAX_LOSS = "max_loss"


@dataclass(frozen=True)
class Feasible:
    """The feasible set: the eps-ball around x_nat, intersected with the input bounds."""

    geometry: Geometry
    eps: float
    bounds: tuple[float, float]

    def __call__(self, x_nat: Tensor, delta: Tensor) -> Tensor:
        """x_nat + delta projected onto the ball, then clipped to the bounds, (B, ...)."""
        # Clipping after projecting keeps the ball: each coordinate moves towards x_nat.
        return (x_nat + self.geometry.project(delta, self.eps)).clamp(*self.bounds)


@dataclass(frozen=True)
class LoopOptions:
    """The budget and the rules of one run of the loop, validated by the caller.

    Attributes:
        steps: gradient steps per restart (>= 1).
        random_start: start each restart uniformly inside the ball instead of at x.
        restarts: independent runs; later ones only attack samples not yet settled.
        targeted: success means predicting y instead of avoiding it.
        eot_samples: forward passes averaged per gradient: of a stochastic model, or over
            random input transformations (each call of ``evaluate`` draws a fresh one).
        early_stop: stop updating a sample once an iterate fools the model.
        select: FIRST_FOOLING or MAX_LOSS (see `Select`).
    """

    steps: int
    random_start: bool
    restarts: int
    targeted: bool
    eot_samples: int
    early_stop: bool
    select: Select = Select.FIRST_FOOLING

    @property
    def single_candidate(self) -> bool:
        """One step and one restart (FGSM): nothing to select or stop early."""
        return self.steps == 1 and self.restarts == 1


@dataclass
class FixedStep:
    """Projected gradient ascent with a constant step size (PGD, and FGSM as one step)."""

    feasible: Feasible
    step_size: float

    def step(self, x_k: Tensor, x_nat: Tensor, grad: Tensor, objective: Tensor) -> Tensor:
        direction = self.feasible.geometry.ascent_direction(grad)
        return self.feasible(x_nat, (x_k - x_nat) + self.step_size * direction)

    def keep(self, mask: Tensor) -> None:
        pass  # stateless


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the model in eval mode; restore each submodule's own training flag on exit.

    Restoring per module (not ``model.train(was_training)``) matters for wrappers such
    as MC dropout that keep some layers in train mode on purpose.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@dataclass
class _Best:
    """Per-sample best iterate, by the attack's selection rule.

    FIRST_FOOLING: the first iterate that fools, else the highest objective. MAX_LOSS: the
    highest objective, fooled or not.
    """

    x: Tensor
    objective: Tensor
    fooled: Tensor
    select: Select

    @classmethod
    def empty(cls, x: Tensor, select: Select) -> _Best:
        batch = x.shape[0]
        return cls(
            x=x.clone(),
            objective=torch.full((batch,), float("-inf"), dtype=torch.float64, device=x.device),
            fooled=torch.zeros(batch, dtype=torch.bool, device=x.device),
            select=select,
        )

    @property
    def settled(self) -> Tensor:
        """(B,) bool: samples whose answer no later iterate can change (no more work)."""
        if self.select is Select.FIRST_FOOLING:
            return self.fooled
        return torch.zeros_like(self.fooled)

    def update(self, idx: Tensor, x_k: Tensor, objective: Tensor, fooled: Tensor) -> None:
        """Offer iterate x_k for the samples ``idx`` (rows of x_k)."""
        objective = objective.detach().to(torch.float64)
        better = objective > self.objective[idx]
        if self.select is Select.FIRST_FOOLING:
            better = ~self.fooled[idx] & (fooled | better)
        chosen = idx[better]
        self.x[chosen] = x_k[better].detach()
        self.objective[chosen] = objective[better]
        self.fooled[chosen] = fooled[better]


def _probe(
    evaluate: Evaluate, x_k: Tensor, y: Tensor, eot_samples: int, with_grad: bool
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Objective (B,), its input gradient (None unless ``with_grad``) and scores (B, K).

    The argmax of the scores is the prediction: the logits for one pass; with EOT the
    averaged probabilities, while the objective and gradient are averaged over
    ``eot_samples`` passes. Each pass is a call of ``evaluate`` of its own, so under an
    attack's input transform each draws a fresh transformation (see
    `attacks._driver.make_evaluate`); each is differentiated on its own so only one graph
    is alive at a time.
    """
    if eot_samples == 1:  # the common case: no averaging, no copies
        return _probe_once(evaluate, x_k, y, with_grad)
    passes = [_probe_once(evaluate, x_k, y, with_grad) for _ in range(eot_samples)]
    objective = torch.stack([p[0] for p in passes]).mean(dim=0)
    grad = torch.stack([p[1] for p in passes]).mean(dim=0) if with_grad else None
    probs = torch.stack([p[2].float().softmax(dim=1) for p in passes]).mean(dim=0)
    return objective, grad, probs


def _probe_once(
    evaluate: Evaluate, x_k: Tensor, y: Tensor, with_grad: bool
) -> tuple[Tensor, Tensor | None, Tensor]:
    """One forward pass: objective (B,), input gradient or None, logits (B, K), detached."""
    if not with_grad:
        # No graph for the parameters either: this pass only scores an iterate.
        with torch.no_grad():
            objective, logits = evaluate(x_k, y)
        return objective, None, logits
    x_in = x_k.detach().requires_grad_(True)
    objective, logits = evaluate(x_in, y)
    (grad,) = torch.autograd.grad(objective.sum(), x_in)
    return objective.detach(), grad, logits.detach()


@dataclass
class _Active:
    """The samples still under attack: their rows in the batch and their tensors."""

    idx: Tensor  # (A,) rows of the full batch
    x_nat: Tensor  # (A, ...) clean inputs
    y: Tensor  # (A,) labels or targets
    x_k: Tensor  # (A, ...) current iterate

    def keep(self, mask: Tensor) -> None:
        self.idx, self.x_nat, self.y, self.x_k = (
            t[mask] for t in (self.idx, self.x_nat, self.y, self.x_k)
        )


def _fooled(scores: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """(B,) bool: the prediction (argmax of the scores) is the target, or is not the label."""
    prediction = scores.argmax(dim=1)
    return prediction == y if targeted else prediction != y


def _report(
    callback: Callback | None,
    step: int,
    restart: int,
    idx: Tensor,
    objective: Tensor,
    fooled: Tensor,
    targeted: bool,
) -> None:
    """Call ``callback`` with copies, so nothing it does can reach the loop's tensors."""
    if callback is None:
        return
    # The loop maximises the objective; a targeted attack's is minus its loss.
    loss = -objective if targeted else objective
    info = StepInfo(
        step=step,
        restart=restart,
        active=idx.detach().clone(),
        loss=loss.detach().clone(),
        fooled=fooled.detach().clone(),
    )
    callback(info)


def _attack_once(
    evaluate: Evaluate,
    active: _Active,
    best: _Best,
    rule: StepRule,
    options: LoopOptions,
    restart: int = 0,
    callback: Callback | None = None,
) -> None:
    """One restart: ``steps`` gradient steps from active.x_k, offering each iterate to best."""

    targeted, eot_samples = options.targeted, options.eot_samples

    def offer(step: int, objective: Tensor, scores: Tensor) -> None:
        fooled = _fooled(scores, active.y, targeted)
        if step > 0:  # x_0 is the start, not an iterate taken after a step
            best.update(active.idx, active.x_k, objective, fooled)
        _report(callback, step, restart, active.idx, objective, fooled, targeted)

    for k in range(options.steps):
        objective, grad, scores = _probe(
            evaluate, active.x_k, active.y, eot_samples, with_grad=True
        )
        if k == 0:
            if callback is not None:
                offer(0, objective, scores)
        else:
            offer(k, objective, scores)
            still_open = ~best.settled[active.idx]
            if options.early_stop and not bool(still_open.all()):
                active.keep(still_open)
                rule.keep(still_open)
                grad, objective = grad[still_open], objective[still_open]
                if active.idx.numel() == 0:
                    return
        active.x_k = rule.step(active.x_k, active.x_nat, grad, objective).detach()

    # A settled sample (fooled, under FIRST_FOOLING) keeps its answer whatever comes
    # after, so the final iterate needs scoring only where it can still win.
    active.keep(~best.settled[active.idx])
    if active.idx.numel():
        objective, _, scores = _probe(evaluate, active.x_k, active.y, eot_samples, with_grad=False)
        offer(options.steps, objective, scores)


def descend(
    evaluate: Evaluate,
    x: Tensor,
    y: Tensor,
    *,
    feasible: Feasible,
    make_rule: Callable[[], StepRule],
    options: LoopOptions,
    generator: torch.Generator | None,
    callback: Callback | None = None,
) -> Tensor:
    """Run the shared attack loop and return the per-sample best iterate.

    Args:
        evaluate: (x (B, ...), y (B,)) -> (objective to maximise (B,), logits (B, K)).
            Called on subsets of the batch as samples leave the active set.
        x: clean inputs (B, ...), already validated.
        y: labels (B,), or target labels when ``options.targeted``.
        feasible: the eps-ball and bounds every iterate must stay in.
        make_rule: builds a fresh step rule for each restart.
        options: the budget and the rules of the loop (see `LoopOptions`).
        generator: source of the random starts.
        callback: called with a `StepInfo` on each restart's start and after each step;
            it sees copies and cannot change the result.

    Returns:
        (B, ...) tensor: per sample, the best iterate taken after a step: the first that
        fools the model, else the one with the highest objective (FIRST_FOOLING); or the
        one with the highest objective (MAX_LOSS).
    """
    best = _Best.empty(x, options.select)
    all_idx = torch.arange(x.shape[0], device=x.device)
    for restart in range(options.restarts):
        idx = all_idx if restart == 0 else all_idx[~best.settled]
        if idx.numel() == 0:
            break
        x_nat = x[idx]
        x_0 = x_nat
        if options.random_start:
            x_0 = feasible(x_nat, feasible.geometry.random_start(x_nat, feasible.eps, generator))
        if options.single_candidate:
            return _single_step(evaluate, x_0, x_nat, y, idx, make_rule(), options, callback)
        active = _Active(idx=idx, x_nat=x_nat, y=y[idx], x_k=x_0)
        _attack_once(evaluate, active, best, make_rule(), options, restart, callback)
    return best.x


def _single_step(
    evaluate: Evaluate,
    x_0: Tensor,
    x_nat: Tensor,
    y: Tensor,
    idx: Tensor,
    rule: StepRule,
    options: LoopOptions,
    callback: Callback | None,
) -> Tensor:
    """A single candidate (FGSM): it is the answer, no need to score it -- unless a callback
    wants its loss, which costs one more forward pass, taken after the answer is fixed."""
    objective, grad, scores = _probe(evaluate, x_0, y, options.eot_samples, with_grad=True)
    x_1 = rule.step(x_0, x_nat, grad, objective).detach()
    if callback is not None:
        targeted = options.targeted
        _report(callback, 0, 0, idx, objective, _fooled(scores, y, targeted), targeted)
        objective, _, scores = _probe(evaluate, x_1, y, options.eot_samples, with_grad=False)
        _report(callback, 1, 0, idx, objective, _fooled(scores, y, targeted), targeted)
    return x_1
