"""Auto-PGD: its check schedule and step rule against AutoAttack's reference rules and
known answers, and the attack against PGD and torchattacks' APGD on the same weights."""

from __future__ import annotations

import sys

import pytest
import torch
import torchattacks
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attacks import apgd, pgd
from attacks.apgd import APGDStep, checkpoints
from attacks.descent import Feasible
from attacks.norms import GEOMETRIES, Norm
from tests.attacks import apgd_reference
from tests.attacks.models import (
    PEER_TOLERANCE,
    Recorder,
    assert_within_budget,
    attack_cases,
    case_inputs,
    expects_lab_warnings,
    robust_accuracy,
    robust_mask,
)

# --- the check schedule ----------------------------------------------------------------------


def test_checkpoints_for_100_steps_are_autoattacks() -> None:
    # Windows of 22, 19, 16, 13, 10, 7, 6, 6 steps (then 6 more would end at 105).
    assert checkpoints(100) == (22, 41, 57, 70, 80, 87, 93, 99)
    assert list(checkpoints(100)) == apgd_reference.schedule(100)


def test_checkpoints_for_small_budgets_are_autoattacks() -> None:
    # n = 10: windows of max(int(2.2), 1) = 2, then 1 each (shrink and floor are both 1);
    # the reference's last check, at 10, changes no step that is taken.
    assert checkpoints(10) == (2, 3, 4, 5, 6, 7, 8, 9)
    assert checkpoints(20) == (4, 7, 9, *range(10, 20))
    assert checkpoints(5) == (1, 2, 3, 4)
    assert checkpoints(2) == (1,)
    assert checkpoints(1) == ()


@pytest.mark.parametrize("steps", [*range(1, 160), 200, 250, 333, 500, 1000, 1234])
def test_checkpoints_agree_with_the_reference_loop(steps: int) -> None:
    assert list(checkpoints(steps)) == apgd_reference.schedule(steps)


# --- the step rule on scripted objectives --------------------------------------------------

EPS = 0.1


def _drive(
    rule: APGDStep, objectives: torch.Tensor, x: torch.Tensor, calls: int
) -> list[torch.Tensor]:
    """Call rule.step for iterates 0..calls-1 with the given objectives (calls, B) and a
    zero gradient; return the iterates it proposes."""
    x_nat = torch.full_like(x, 0.5)
    out = []
    for k in range(calls):
        out.append(rule.step(x, x_nat, torch.zeros_like(x), objectives[k]))
    return out


def _scripted_objectives(steps: int) -> torch.Tensor:
    """Per-sample objective sequences (steps, 5) with known halving decisions at w_1 = 22."""
    k = torch.arange(steps, dtype=torch.float64)
    rising = k
    flat = torch.zeros(steps, dtype=torch.float64)
    zigzag = k % 2
    # Rising except at drop points: each drop is one step without a rise. Of the 22 steps
    # up to w_1 (the first, to x_1 = 1, rises over the history's initial 0), 17 rises is
    # more than 0.75 * 22 = 16.5 (keep eta) and 16 is not (halve).
    five_drops, six_drops = k.clone(), k.clone()
    five_drops[[3, 6, 9, 12, 15]] -= 10
    six_drops[[3, 6, 9, 12, 15, 18]] -= 10
    return torch.stack([rising, flat, zigzag, five_drops, six_drops], dim=1)


def test_the_rule_checks_exactly_at_the_checkpoints() -> None:
    """A flat objective never rises, so every check halves: eta changes at the checks only."""
    for steps in (1, 5, 10, 37, 100):
        rule = APGDStep(Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0)), steps)
        x = torch.full((1, 2), 0.5, dtype=torch.float64)
        changed, eta = [], 2 * EPS
        for k in range(steps):
            rule.step(x, x, torch.zeros_like(x), torch.zeros(1, dtype=torch.float64))
            if float(rule.eta[0]) != eta:
                changed.append(k)
                eta = float(rule.eta[0])
        assert tuple(changed) == checkpoints(steps)


def test_rule_halves_exactly_where_autoattack_does() -> None:
    steps = 100
    feasible = Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0))
    rule = APGDStep(feasible, steps)
    objectives = _scripted_objectives(steps)
    x = torch.full((5, 3), 0.5, dtype=torch.float64)
    _drive(rule, objectives, x, calls=22)  # iterates 0..21: before the first check
    torch.testing.assert_close(rule.eta, torch.full((5,), 2 * EPS, dtype=torch.float64))
    _drive(rule, objectives[22:], x, calls=1)  # iterate 22 = w_1
    expected = torch.tensor([2.0, 1.0, 1.0, 2.0, 1.0], dtype=torch.float64) * EPS
    torch.testing.assert_close(rule.eta, expected)
    _drive(rule, objectives[23:], x, calls=steps - 23)
    # Rising never halves; flat and zigzag halve at all 8 checks (about half of zigzag's
    # steps rise, and none of flat's).
    assert float(rule.eta[0]) == 2 * EPS
    assert float(rule.eta[1]) == float(rule.eta[2]) == 2 * EPS / 2**8


def _with_rises(rises: set[int], calls: int, base: float) -> torch.Tensor:
    """Objectives (calls, 1) for iterates 0..calls-1 from ``base``: up by 1 at the steps
    k in ``rises``, down by 1 at the others (k >= 1)."""
    values = [base]
    for k in range(1, calls):
        values.append(values[-1] + (1.0 if k in rises else -1.0))
    return torch.tensor(values, dtype=torch.float64)[:, None]


@pytest.mark.parametrize(("rises", "halves"), [(11, True), (12, False)])
def test_at_most_rho_rises_halve(rises: int, halves: bool) -> None:
    """The oscillation test is inclusive: with rho = 0.5 and a window of 22 steps, 11 rises
    halve and 12 do not (the paper's "fewer than" would keep eta at 11)."""
    rule = APGDStep(Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0)), 100, rho=0.5)
    objective = _with_rises(set(range(1, rises + 1)), calls=23, base=100.0)
    _drive(rule, objective, torch.full((1, 2), 0.5, dtype=torch.float64), calls=23)
    assert float(rule.eta[0]) == (EPS if halves else 2 * EPS)


@pytest.mark.parametrize(("base", "halves"), [(100.0, False), (-100.0, True)])
def test_the_first_step_is_judged_against_a_zero_loss(base: float, halves: bool) -> None:
    """AutoAttack's loss history starts at zeros, so the step to x_1 counts as a rise when
    f(x_1) > 0, whatever f(x_0) was. Here every step rises except five drops: 17 rises
    (> 16.5, keep eta) with positive objectives, 16 (halve) with negative ones."""
    rule = APGDStep(Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0)), 100)
    rises = set(range(1, 23)) - {3, 6, 9, 12, 15}
    objective = _with_rises(rises, calls=23, base=base)
    _drive(rule, objective, torch.full((1, 2), 0.5, dtype=torch.float64), calls=23)
    assert float(rule.eta[0]) == (EPS if halves else 2 * EPS)


def test_momentum_step_by_hand() -> None:
    """x_1 = P(x_0 + 2 eps sign g_0); x_2 = P(x_1 + a (z - x_1) + (1 - a)(x_1 - x_0)),
    z = P(x_1 + 2 eps sign g_1), with P the clip to [x_nat - eps, x_nat + eps]."""
    feasible = Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0))
    rule = APGDStep(feasible, 100)
    x_nat = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    up, down = torch.tensor([[1.0, 1.0]]), torch.tensor([[-1.0, 0.0]])
    x_1 = rule.step(x_nat, x_nat, up.double(), torch.zeros(1, dtype=torch.float64))
    torch.testing.assert_close(x_1, torch.tensor([[0.6, 0.6]], dtype=torch.float64))
    x_2 = rule.step(x_1, x_nat, down.double(), torch.ones(1, dtype=torch.float64))
    # z = (0.4, 0.6); x_2 = P(0.6 + 0.75 (z - 0.6) + 0.25 (0.6 - 0.5)) = P(0.475, 0.625)
    torch.testing.assert_close(x_2, torch.tensor([[0.475, 0.6]], dtype=torch.float64))


def test_stall_condition_alone_halves_but_not_at_the_first_check() -> None:
    """A sample whose steps all rise but never beat its best: only condition 2 fires."""
    steps = 100
    feasible = Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0))
    rule = APGDStep(feasible, steps, rho=0.0)  # condition 1 fires only with no rise at all
    # The first objective is the best ever seen; afterwards it climbs back but stays below.
    objective = torch.linspace(-2.0, -1.0, steps, dtype=torch.float64)
    objective[0] = 0.0
    x = torch.full((1, 2), 0.5, dtype=torch.float64)
    _drive(rule, objective[:23, None], x, 23)
    assert float(rule.eta[0]) == 2 * EPS  # no stall test at w_1 = 22
    _drive(rule, objective[23:, None], x, steps - 23)
    # Halved at w_2 = 41 (the best is where it was at w_1, and w_1 did not halve), not at
    # w_3 (w_2 halved), and so on: at 41, 70, 87 and 99.
    assert float(rule.eta[0]) == 2 * EPS / 2**4


def test_on_halving_the_next_step_starts_from_the_best_point() -> None:
    feasible = Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0))
    rule = APGDStep(feasible, 100, momentum=1.0)  # no momentum: the step is exact
    x_nat = torch.full((2, 4), 0.5, dtype=torch.float64)
    iterates = [x_nat + 0.001 * k for k in range(23)]
    objective = torch.zeros(23, 2, dtype=torch.float64)
    objective[5, 0] = 1.0  # sample 0 peaks at x_5 and otherwise stays flat: it halves at 22
    objective[:, 1] = torch.arange(23)  # sample 1 always rises: it keeps its step size
    for k in range(23):
        proposed = rule.step(iterates[k], x_nat, torch.zeros_like(x_nat), objective[k])
    torch.testing.assert_close(proposed[0], iterates[5][0])  # zero gradient: x_max itself
    torch.testing.assert_close(proposed[1], iterates[22][1])


def test_after_a_restart_the_next_step_is_judged_against_the_discarded_iterate() -> None:
    """On halving, the next step starts from x_max, but AutoAttack counts its rise against
    the iterate x_(w_j) it replaced (its loss history), not against f_max."""
    feasible = Feasible(GEOMETRIES[Norm.LINF], EPS, (0.0, 1.0))
    rule = APGDStep(feasible, 100)
    objective = torch.zeros(42, dtype=torch.float64)
    objective[5] = 100.0  # the best point; flat around it, so eta halves at w_1 = 22
    objective[23:42] = torch.arange(1.0, 20.0, dtype=torch.float64)  # rising, below f_max
    objective[[26, 30, 34, 38]] = 0.0  # four drops
    _drive(rule, objective[:, None], torch.full((1, 2), 0.5, dtype=torch.float64), calls=42)
    # Window 23..41 (19 steps, rho * 19 = 14.25): k = 23 rises over f(x_22) = 0 and the
    # drops leave 15 rises, so eta is not halved again at w_2 = 41 (and the stall test does
    # not apply, w_1 having halved). Judged against f_max = 100, k = 23 would not rise,
    # and 14 rises would halve.
    assert float(rule.eta[0]) == 2 * EPS / 2


def test_keep_shrinks_the_state_consistently() -> None:
    """Dropping samples mid-run leaves the kept samples' trajectory exactly unchanged."""
    steps = 40
    torch.manual_seed(0)
    feasible = Feasible(GEOMETRIES[Norm.L2], 0.5, (0.0, 1.0))
    x_nat = torch.rand(6, 5, dtype=torch.float64)
    grads = torch.randn(steps, 6, 5, dtype=torch.float64)
    objectives = torch.randn(steps, 6, dtype=torch.float64)
    mask = torch.tensor([True, False, True, True, False, True])
    full, partial = APGDStep(feasible, steps), APGDStep(feasible, steps)
    x_full, x_part, x_nat_part = x_nat.clone(), x_nat.clone(), x_nat
    for k in range(steps):
        if k == 13:
            partial.keep(mask)
            x_part, x_nat_part = x_part[mask], x_nat[mask]
        rows = mask if k >= 13 else slice(None)
        x_full = full.step(x_full, x_nat, grads[k], objectives[k])
        x_part = partial.step(x_part, x_nat_part, grads[k][rows], objectives[k][rows])
        torch.testing.assert_close(x_part, x_full[rows], rtol=0, atol=0)
    torch.testing.assert_close(partial.eta, full.eta[mask], rtol=0, atol=0)
    assert bool((full.eta < 2 * 0.5).any())  # the run did halve, so the state mattered


# --- against AutoAttack's reference, transcribed in tests/attacks/apgd_reference.py ---------


class _Sine(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


def _reference_case(norm: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    """A seeded float64 model on 64 random 1x4x4 inputs, its predictions, and eps.

    Classes 2..4 sit 20 logits below 0 and 1, so the label never drops to third place,
    where DLR is flat at 1 and its gradient is rounding noise. For linf the hidden layer
    is sin(w . x + b) with |w| = 30: the loss waves inside the ball, so iterates do not
    all rest on its corners and the rules have work to do at n = 100 (sign steps do not
    amplify rounding). For l2 it is a gentle tanh layer: normalised-gradient steps on a
    rough landscape would amplify the ~1e-12 differences of the two l2 arithmetics.
    """
    generator = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    hidden, classes = 16, 5
    first = nn.Linear(16, hidden).double()
    last = nn.Linear(hidden, classes).double()
    with torch.no_grad():
        if norm == "linf":
            weight = randn(hidden, 16)
            first.weight.copy_(30.0 * weight / weight.norm(dim=1, keepdim=True))
            first.bias.copy_(torch.rand(hidden, generator=generator, dtype=torch.float64) * 6.28)
            last.weight.copy_(0.3 * randn(classes, hidden))
        else:
            first.weight.copy_(randn(hidden, 16) / 4)
            first.bias.copy_(randn(hidden) / 2)
            last.weight.copy_(randn(classes, hidden))
        last.bias.copy_(torch.tensor([0.0, 0.0, -30.0, -30.0, -30.0], dtype=torch.float64))
    activation = _Sine() if norm == "linf" else nn.Tanh()
    model = nn.Sequential(nn.Flatten(), first, activation, last).eval()
    x = torch.rand(64, 1, 4, 4, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y, (0.1 if norm == "linf" else 1.0)


@pytest.mark.parametrize("steps", [10, 100])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_run_matches_autoattacks_apgd(
    one_thread, monkeypatch, norm: str, loss: str, steps: int
) -> None:
    """Same start (x itself), model, eps, loss and budget: each sample ends on the best loss
    and the step size that AutoAttack's rules give.

    Our answer is an iterate taken after a step, so the reference's best is taken over
    x_1..x_n (its own also counts x_0). The comparison is over the samples whose reference
    run made every decision by a margin (``decided_by_margins``): where two compared losses
    are equal up to rounding -- an l2 iterate at rest on the sphere, creeping by 1e-16 --
    the decision falls to the last bits of the arithmetic, which differ between any two
    implementations (ours may still agree, but need not). For linf that is every sample;
    for l2 most, and all of them at n = 10.
    """
    model, x, y, eps = _reference_case(norm)
    runs = apgd_reference.run_batch(model, x, y, eps, norm=norm, loss=loss, n_iter=steps)
    rules: list[APGDStep] = []

    class Recorded(APGDStep):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            rules.append(self)

    monkeypatch.setattr(sys.modules["attacks.apgd"], "APGDStep", Recorded)
    x_adv = apgd(
        model,
        x,
        y,
        eps,
        norm=norm,
        steps=steps,
        loss=loss,
        restarts=1,
        random_start=False,
        select="max_loss",
        early_stop=False,
    )
    with torch.no_grad():
        ours = apgd_reference.LOSSES[loss](model(x_adv), y)
    best_after_a_step = torch.tensor([max(run.losses[1:]) for run in runs], dtype=torch.float64)
    # The reference's last check, at w = n, may halve a step that is never taken.
    eta = torch.tensor(
        [2 * eps / 2 ** sum(w < steps for w in run.halved_at) for run in runs],
        dtype=torch.float64,
    )
    decided = torch.tensor([run.decided_by_margins() for run in runs])
    if norm == "linf" or steps == 10:
        assert bool(decided.all())
    else:
        assert int(decided.sum()) >= len(runs) // 2  # a fixture that still tests something

    torch.testing.assert_close(ours[decided], best_after_a_step[decided], rtol=1e-9, atol=1e-12)
    (rule,) = rules
    torch.testing.assert_close(rule.eta[decided], eta[decided], rtol=0, atol=0)


def test_the_reference_case_exercises_every_rule(one_thread) -> None:
    """The fixture above is not trivial: over its decided samples, both tests halve some
    step sizes, some samples keep theirs, and the stall test halves on its own too."""
    for norm in ("linf", "l2"):
        model, x, y, eps = _reference_case(norm)
        runs = apgd_reference.run_batch(model, x, y, eps, norm=norm, loss="ce", n_iter=100)
        decided = [run for run in runs if run.decided_by_margins()]
        halvings = [len(run.halved_at) for run in decided]
        assert min(halvings) < len(checkpoints(100)) and max(halvings) > 0
        assert any(run.stall_only_at for run in decided)
        assert any(set(run.halved_at) - set(run.stall_only_at) for run in decided)


# --- the attack on the digits model --------------------------------------------------------


@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.15])
def test_apgd_is_no_weaker_than_pgd(digits_model, digits_split, eps: float, loss: str) -> None:
    """Same eps, same 10 gradient steps, same loss, same random start (one generator seed).

    The start is shared, but the two paths part after the first step and neither dominates
    per sample, so APGD may lose a sample that PGD's path happened to find: one sample of
    slack. (Measured: APGD is strictly stronger at eps 0.1 and 0.15, tied at 0.05.)
    """
    x, y = digits_split["x_test"], digits_split["y_test"]
    ours = apgd(
        digits_model, x, y, eps, steps=10, loss=loss, generator=torch.Generator().manual_seed(0)
    )
    baseline = pgd(
        digits_model, x, y, eps, steps=10, loss=loss, generator=torch.Generator().manual_seed(0)
    )
    assert robust_accuracy(digits_model, ours, y) <= robust_accuracy(
        digits_model, baseline, y
    ) + 1.0 / len(y)


def _no_weaker_than_torchattacks(model, x, y, eps: float, loss: str, steps: int) -> None:
    # The two start differently, so one seed each differs by -2..+5 of 360 samples from
    # kernel set to kernel set; the mean over three seeds is what must not be weaker.
    seeds = (0, 1, 2)
    peer_accuracy = sum(
        robust_accuracy(
            model,
            torchattacks.APGD(model, eps=eps, steps=steps, loss=loss, n_restarts=1, seed=s)(x, y),
            y,
        )
        for s in seeds
    ) / len(seeds)
    ours = sum(
        robust_accuracy(
            model,
            apgd(
                model, x, y, eps, steps=steps, loss=loss, generator=torch.Generator().manual_seed(s)
            ),
            y,
        )
        for s in seeds
    ) / len(seeds)
    assert ours <= peer_accuracy + PEER_TOLERANCE


@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("eps", [0.1, 0.15])
def test_apgd_is_no_weaker_than_torchattacks_apgd(
    digits_model, digits_split, eps: float, loss: str
) -> None:
    """Same eps, 20 steps, loss and one restart. The starts differ (theirs on the sphere of
    the ball, ours inside it); over six seeds each, the two spread over the same range."""
    x, y = digits_split["x_test"], digits_split["y_test"]
    _no_weaker_than_torchattacks(digits_model, x, y, eps, loss, steps=20)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.15, 0.2])
def test_apgd_100_is_no_weaker_than_torchattacks_apgd_100(
    digits_model, digits_split, eps: float, loss: str
) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    _no_weaker_than_torchattacks(digits_model, x, y, eps, loss, steps=100)


def test_step_size_halves_during_a_real_attack(digits_model, digits_split, monkeypatch) -> None:
    rules: list[APGDStep] = []

    class Recorded(APGDStep):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            rules.append(self)

    # `attacks.apgd` is the function; the module is where apgd() looks the rule up.
    monkeypatch.setattr(sys.modules["attacks.apgd"], "APGDStep", Recorded)
    x, y = digits_split["x_test"][:128], digits_split["y_test"][:128]
    apgd(
        digits_model,
        x,
        y,
        0.1,
        steps=20,
        early_stop=False,  # every sample stays in the batch, so eta keeps all 128 rows
        select="first_fooling",
        generator=torch.Generator().manual_seed(0),
    )
    (rule,) = rules
    assert rule.k == 20 and rule.eta.shape == (128,)
    halvings = torch.log2(2 * 0.1 / rule.eta).round()
    assert int(halvings.min()) >= 0 and int(halvings.max()) <= len(checkpoints(20))
    # Some samples halve (oscillating or stalled), others keep a large step.
    assert bool((halvings > 0).any()) and bool((halvings < halvings.max()).any())


@pytest.mark.filterwarnings("ignore:eps=1 .*covers the whole input range")  # on purpose
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_apgd_stays_within_eps_and_bounds(
    digits_model, digits_split, norm: str, eps: float
) -> None:
    x, y = digits_split["x_test"][:64], digits_split["y_test"][:64]
    x_adv = apgd(digits_model, x, y, eps, norm=norm, steps=8, restarts=2, loss="dlr")
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    if eps == 0.0:
        assert torch.equal(x_adv, x)
    elif (norm, eps) != ("l2", 0.1):  # an l2 ball of 0.1 on 8x8 digits barely moves them
        assert robust_accuracy(digits_model, x_adv, y) < robust_accuracy(digits_model, x, y) - 0.1


def test_l2_apgd_is_no_weaker_than_l2_pgd(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    ours = apgd(
        digits_model, x, y, 1.0, norm="l2", steps=10, generator=torch.Generator().manual_seed(0)
    )
    baseline = pgd(
        digits_model, x, y, 1.0, norm="l2", steps=10, generator=torch.Generator().manual_seed(0)
    )
    clean = robust_accuracy(digits_model, x, y)
    assert robust_accuracy(digits_model, ours, y) <= robust_accuracy(
        digits_model, baseline, y
    ) + 1.0 / len(y)
    assert robust_accuracy(digits_model, ours, y) < clean - 0.2


def test_early_stop_keeps_the_verdict_and_saves_work(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    runs = {}
    for early_stop in (False, True):
        recorder = Recorder(digits_model)
        x_adv = apgd(
            recorder,
            x,
            y,
            0.1,
            steps=20,
            loss="dlr",
            early_stop=early_stop,
            generator=torch.Generator().manual_seed(0),
        )
        runs[early_stop] = (robust_mask(digits_model, x_adv, y), sum(len(b) for b in recorder.seen))
    assert torch.equal(runs[True][0], runs[False][0])
    assert runs[True][1] < runs[False][1]


def test_restarts_never_hurt(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    one = apgd(digits_model, x, y, 0.1, steps=5, generator=torch.Generator().manual_seed(0))
    three = apgd(
        digits_model, x, y, 0.1, steps=5, restarts=3, generator=torch.Generator().manual_seed(0)
    )
    robust_one, robust_three = (
        robust_mask(digits_model, one, y),
        robust_mask(digits_model, three, y),
    )
    assert not bool((robust_three & ~robust_one).any())
    assert int(robust_three.sum()) < int(robust_one.sum())


def test_targeted_apgd_reaches_its_targets(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:100], digits_split["y_test"][:100]
    target = (y + 1) % 10
    x_adv = apgd(
        digits_model,
        x,
        target,
        0.3,
        steps=20,
        targeted=True,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        assert float((digits_model(x_adv).argmax(dim=1) == target).float().mean()) >= 0.95


# --- invariants ------------------------------------------------------------------------------


@expects_lab_warnings
@settings(max_examples=25, deadline=None)
@given(case=attack_cases, rho=st.floats(0.0, 1.0), momentum=st.floats(0.0, 1.0))
def test_apgd_invariants(case: dict, rho: float, momentum: float) -> None:
    inputs = case_inputs(case)
    net, x, y, bounds, generator = (inputs.net, inputs.x, inputs.y, inputs.bounds, inputs.generator)

    x_adv = apgd(
        net,
        x,
        y,
        case["eps"],
        norm=case["norm"],
        loss=case["loss"],
        steps=case["steps"] + 3,  # past the first checkpoints, so halving is exercised
        restarts=case["restarts"],
        early_stop=case["early_stop"],
        targeted=case["targeted"],
        bounds=bounds,
        generator=generator,
        rho=rho,
        momentum=momentum,
    )

    assert_within_budget(x, x_adv, case["eps"], case["norm"], bounds)
    inputs.untouched.check()


def test_apgd_works_under_no_grad_and_inference_mode(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:32], digits_split["y_test"][:32]

    def run() -> torch.Tensor:
        return apgd(digits_model, x, y, 0.1, steps=5, generator=torch.Generator().manual_seed(0))

    expected = run()
    with torch.no_grad():
        in_no_grad = run()
    with torch.inference_mode():
        in_inference = run()
    assert torch.equal(in_no_grad, expected) and torch.equal(in_inference, expected)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"eps": -0.1}, ValueError, r"eps must be a finite number >= 0; got -0.1"),
        ({"steps": 0}, ValueError, r"steps must be an int >= 1; got 0"),
        ({"steps": 2.5}, TypeError, r"steps must be an int >= 1; got 2.5"),
        ({"restarts": 0}, ValueError, r"restarts must be an int >= 1; got 0"),
        ({"norm": "l1"}, ValueError, r"norm must be one of 'linf', 'l2'; got 'l1'"),
        ({"loss": "hinge"}, ValueError, r"loss must be one of 'ce', 'margin', 'dlr'; got 'hinge'"),
        ({"rho": 1.5}, ValueError, r"rho must be a number in \[0, 1\]; got 1.5"),
        ({"rho": -0.5}, ValueError, r"rho must be a finite number >= 0; got -0.5"),
        ({"momentum": 2}, ValueError, r"momentum must be a number in \[0, 1\]; got 2.0"),
        ({"momentum": "high"}, TypeError, r"momentum must be a real number; got 'high'"),
        ({"eot_samples": 0}, ValueError, r"eot_samples must be an int >= 1; got 0"),
        ({"generator": 1.0}, TypeError, r"generator must be a torch.Generator, an int seed"),
    ],
)
def test_bad_arguments(kwargs, error, pattern) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    x, y = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 3])
    arguments = {"eps": 0.1, **kwargs}
    eps = arguments.pop("eps")
    with pytest.raises(error, match=pattern):
        apgd(model, x, y, eps, **arguments)
