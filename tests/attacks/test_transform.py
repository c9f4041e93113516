"""Expectation over transformation: the gradient attacks' ``transform=``, and the success
rate of adversarial examples under fresh draws of the transformation."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch import nn

from attacks import (
    apgd,
    fgsm,
    fooled_under_transform,
    pgd,
    success_rate,
    survives_transform,
    transform_success_rate,
)
from attacks._driver import resolve_selection
from attacks.descent import Select
from tests.attacks.models import Recorder, linear_model, tiny_net

ATTACKS = {"pgd": pgd, "apgd": apgd, "fgsm": fgsm}
# A budget small enough for a fast test; fgsm has none to set.
BUDGET = {"pgd": {"steps": 4}, "apgd": {"steps": 4}, "fgsm": {}}


def identity(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x


def noise(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of scale 0.05, drawn from the generator."""
    return x + 0.05 * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2, independently."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)


@pytest.fixture
def batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A float64 TinyNet (deterministic in eval mode) and 6 random 3x6x6 images."""
    net = tiny_net(3, 6, 4, torch.float64)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 6, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=generator)
    return net, x, y


# --- the transform inside the attack loop ---------------------------------------------------


@pytest.mark.parametrize("eot_samples", [1, 3])
@pytest.mark.parametrize("name", ["pgd", "apgd", "fgsm"])
def test_identity_transform_changes_nothing(batch, name: str, eot_samples: int) -> None:
    # The transformations draw from a generator of their own: the attack's random start
    # and everything after it are those of the attack without a transform.
    net, x, y = batch
    attack, budget = ATTACKS[name], BUDGET[name]
    # Explicit selection, since a transform alone resolves select=None to max_loss.
    select = {} if name == "fgsm" else {"select": "first_fooling", "early_stop": True}
    options = {**budget, **select, "eot_samples": eot_samples, "generator": 3}
    plain = attack(net, x, y, 0.1, **options)
    transformed = attack(net, x, y, 0.1, transform=identity, **options)
    assert torch.equal(plain, transformed)


def test_the_attack_generator_is_not_drawn_from(batch) -> None:
    net, x, y = batch
    with_transform, without = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    pgd(net, x, y, 0.1, steps=3, transform=noise, eot_samples=2, generator=with_transform)
    pgd(net, x, y, 0.1, steps=3, generator=without)
    assert torch.equal(with_transform.get_state(), without.get_state())


@pytest.mark.parametrize("name", ["pgd", "apgd", "fgsm"])
def test_same_seed_same_result(batch, name: str) -> None:
    # No random start: the transformations are the only randomness. l2 steps follow the
    # gradient's direction, which any change of the noise moves.
    net, x, y = batch
    attack = ATTACKS[name]
    options = {**BUDGET[name], "norm": "l2", "transform": noise, "eot_samples": 2}
    if name != "fgsm":
        options["random_start"] = False
    first = attack(net, x, y, 0.5, generator=3, **options)
    again = attack(net, x, y, 0.5, generator=torch.Generator().manual_seed(3), **options)
    other = attack(net, x, y, 0.5, generator=4, **options)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_gradient_flows_through_the_transform() -> None:
    # logit_1 - logit_0 = w . flip(x) = flip(w) . x: under CE with label 0 the input gradient
    # is p_1 * flip(w), so one FGSM step is eps * sign(flip(w)), exactly, with no rounding
    # in the signs (every weight is +-1).
    pattern = torch.tensor([1, -1, -1, 1, 1, 1, -1, -1, -1, 1, 1, 1, 1, -1, 1, -1])
    weight = torch.stack([torch.zeros(16), pattern.float()]).double()
    model = linear_model(weight, torch.tensor([0.0, -0.3], dtype=torch.float64))
    x = torch.full((2, 1, 4, 4), 0.5, dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    image = pattern.double().view(1, 1, 4, 4)

    def mirror(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x.flip(-1)

    x_adv = fgsm(model, x, y, 0.1, transform=mirror)
    torch.testing.assert_close(x_adv, x + 0.1 * image.flip(-1), rtol=0, atol=1e-12)
    # Without the transform the step follows w itself: another answer.
    torch.testing.assert_close(fgsm(model, x, y, 0.1), x + 0.1 * image, rtol=0, atol=1e-12)


def test_the_objective_sees_the_transformed_input(batch) -> None:
    net, x, y = batch
    seen: list[torch.Tensor] = []

    def objective(model: nn.Module, x_in: torch.Tensor, labels: torch.Tensor):
        seen.append(x_in.detach().clone())
        logits = model(x_in)
        return nn.functional.cross_entropy(logits, labels, reduction="none"), logits

    def negate(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return 1.0 - x

    pgd(net, x, y, 0.1, steps=1, random_start=False, objective=objective, transform=negate)
    torch.testing.assert_close(seen[0], 1.0 - x, rtol=0, atol=0)


def _flip_case() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A binary linear model that looks only at the left half of a 1x4x4 image.

    margin = logit_1 - logit_0 = sum of the left two columns - 4.1. The images are constant
    (c_i = 0.5 - 0.003 i, so mirroring leaves them unchanged) and correctly classified with
    margins -0.1 - 0.024 i in [-0.27, -0.1]. With eps 0.05 a perturbation of the left half
    alone (plain PGD: the right half's gradient is exactly 0) gains 0.4 unmirrored and
    nothing mirrored; one of the whole image (EOT over mirroring) gains 0.4 both ways, so
    its margins are >= 0.13 under every draw. Every margin is 0.1 or more from the boundary.
    """
    left = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64).repeat(4)
    weight = torch.stack([torch.zeros(16, dtype=torch.float64), left])
    model = linear_model(weight, torch.tensor([0.0, -4.1], dtype=torch.float64))
    levels = 0.5 - 0.003 * torch.arange(8, dtype=torch.float64)
    x = levels.view(8, 1, 1, 1).expand(8, 1, 4, 4).clone()
    return model, x, torch.zeros(8, dtype=torch.long)


def test_eot_makes_the_example_survive_the_transformation() -> None:
    model, x, y = _flip_case()
    # The same selection for both, so the difference is EOT's alone.
    options = {"steps": 20, "random_start": False, "select": "max_loss", "generator": 0}
    plain = pgd(model, x, y, 0.05, **options)
    eot = pgd(model, x, y, 0.05, transform=random_flip, eot_samples=8, **options)
    assert success_rate(model, x, plain, y) == 1.0  # it fools the model as it is...
    # ...but only under the draws that do not mirror it (about half); EOT's under all. The
    # evaluation draws from another seed than the attack's.
    judge = {"samples": 32, "fraction": 0.9, "generator": 1}
    plain_rate = transform_success_rate(model, plain, y, random_flip, **judge)
    eot_rate = transform_success_rate(model, eot, y, random_flip, **judge)
    assert plain_rate <= 0.25
    assert eot_rate >= 0.75
    fooled = fooled_under_transform(model, plain, y, random_flip, samples=32, generator=1)
    assert float(fooled.min()) > 0.0 and float(fooled.max()) < 1.0


def test_a_transform_resolves_like_a_stochastic_model(batch) -> None:
    net, x, y = batch
    x, y = torch.cat([x, x]), torch.cat([y, y])  # 12 rows: not the probe's 8
    recorder = Recorder(net)  # declares nothing: without a transform it would be probed
    auto = pgd(recorder, x, y, 0.1, steps=3, transform=noise, generator=2)
    # No probe, no early stop: every row at every step, and the final scoring of all.
    assert [len(b) for b in recorder.seen] == [len(x)] * 4
    explicit = pgd(
        net, x, y, 0.1, steps=3, transform=noise, generator=2, select="max_loss", early_stop=False
    )
    assert torch.equal(auto, explicit)


class Unprobed(nn.Module):
    """A model that must not be run."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the model was probed")


@pytest.mark.parametrize(
    ("early_stop", "select", "single", "expected"),
    [
        (None, None, False, (False, Select.MAX_LOSS)),
        (False, None, False, (False, Select.MAX_LOSS)),
        (True, None, False, (True, Select.FIRST_FOOLING)),  # explicit choices win
        (None, "first_fooling", False, (True, Select.FIRST_FOOLING)),
        (False, "first_fooling", False, (False, Select.FIRST_FOOLING)),
        (None, None, True, (False, Select.FIRST_FOOLING)),  # fgsm: nothing to select
    ],
)
def test_resolution_with_a_transform(early_stop, select, single, expected) -> None:
    x = torch.rand(4, 1, 2, 2)
    got = resolve_selection(Unprobed(), x, early_stop, select, single, transformed=True)
    assert got == expected


# --- bad transforms ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pgd", "apgd", "fgsm"])
def test_a_transform_must_be_callable(batch, name: str) -> None:
    net, x, y = batch
    pattern = r"transform must be a callable \(x, generator\) -> x', or None; got 3"
    with pytest.raises(TypeError, match=pattern):
        ATTACKS[name](net, x, y, 0.1, transform=3, **BUDGET[name])
    module = importlib.import_module(f"attacks.{name}")
    with pytest.raises(TypeError, match=pattern):
        module.validate_options(transform=3)
    module.validate_options(transform=identity, eot_samples=2)


def _crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x[..., 1:, :]


def _as_tuple(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor]:
    return (x,)


def _detached(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x.detach() + 0.01


def _through_numpy(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.from_numpy(np.clip(x.detach().numpy(), 0.1, 0.9))


def _quantised(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (x * 255).to(torch.uint8).to(x.dtype) / 255


@pytest.mark.parametrize("name", ["pgd", "apgd", "fgsm"])
@pytest.mark.parametrize(
    ("transform", "error", "pattern"),
    [
        (
            _crop,
            ValueError,
            r"transform must return a tensor of x's shape \(6, 3, 6, 6\); "
            r"got \(6, 3, 5, 6\)",
        ),
        (_as_tuple, TypeError, r"transform must return a torch.Tensor .* got a tuple"),
        (_detached, ValueError, r"transform breaks the gradient"),
        (_through_numpy, ValueError, r"transform breaks the gradient"),
        (_quantised, ValueError, r"transform breaks the gradient"),
    ],
)
def test_a_bad_transform_is_caught_on_the_first_call(
    batch, name: str, transform, error, pattern
) -> None:
    net, x, y = batch
    with pytest.raises(error, match=pattern):
        ATTACKS[name](net, x, y, 0.1, transform=transform, **BUDGET[name])


def test_fgsm_checks_eot_samples(batch) -> None:
    net, x, y = batch
    with pytest.raises(ValueError, match=r"eot_samples must be an int >= 1; got 0"):
        fgsm(net, x, y, 0.1, transform=identity, eot_samples=0)


# --- success under transformation -----------------------------------------------------------


class Scores(nn.Module):
    """Returns its input as the logits: the prediction of row i is x[i].argmax()."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Schedule:
    """Swaps the two scores (fooling a label-0 row of (1, 0)) on the calls where
    ``pattern`` (cycled) is True; the generator is not used."""

    def __init__(self, pattern: list[bool]) -> None:
        self.pattern, self.calls = pattern, 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        swap = self.pattern[self.calls % len(self.pattern)]
        self.calls += 1
        return x.flip(-1) if swap else x


def _scores(classes: list[int]) -> torch.Tensor:
    return nn.functional.one_hot(torch.tensor(classes), 2).double()


def test_identity_gives_the_plain_success_rate() -> None:
    model, y = Scores(), torch.zeros(5, dtype=torch.long)
    x, x_adv = _scores([0, 0, 0, 0, 0]), _scores([0, 1, 1, 0, 1])
    fooled = fooled_under_transform(model, x_adv, y, identity, samples=4, generator=0)
    assert fooled.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    rate = transform_success_rate(model, x_adv, y, identity, samples=4, generator=0)
    assert rate == pytest.approx(success_rate(model, x, x_adv, y)) == pytest.approx(3 / 5)
    # Chunked, the same answers.
    chunked = transform_success_rate(model, x_adv, y, identity, generator=0, batch_size=2)
    assert chunked == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("fooling", "samples", "fraction", "survives"),
    [
        (7, 10, 0.7, True),  # 0.7 * 10 is 7.000000000000001 in floats: still 7 draws
        (7, 10, 0.71, False),
        (29, 32, 0.9, True),  # ceil(28.8) = 29
        (28, 32, 0.9, False),
        (32, 32, 1.0, True),
        (31, 32, 1.0, False),
        (1, 32, 1 / 32, True),
    ],
)
def test_the_threshold_counts_draws(fooling: int, samples: int, fraction: float, survives) -> None:
    model, x, y = Scores(), _scores([0, 0]), torch.zeros(2, dtype=torch.long)
    pattern = [True] * fooling + [False] * (samples - fooling)
    fooled = fooled_under_transform(model, x, y, Schedule(pattern), samples=samples)
    assert fooled.tolist() == [fooling / samples] * 2
    got = survives_transform(
        model, x, y, Schedule(pattern), samples=samples, fraction=fraction, generator=0
    )
    assert got.tolist() == [survives] * 2


def test_targeted_counts_hitting_the_target() -> None:
    model, x = Scores(), _scores([0, 1])
    target = torch.ones(2, dtype=torch.long)
    fooled = fooled_under_transform(model, x, target, identity, samples=3, targeted=True)
    assert fooled.tolist() == [0.0, 1.0]


def test_deterministic_given_the_seed(batch) -> None:
    net, x, y = batch
    first = fooled_under_transform(net, x, y, noise, samples=8, generator=11)
    again = fooled_under_transform(
        net, x, y, noise, samples=8, generator=torch.Generator().manual_seed(11)
    )
    assert torch.equal(first, again)
    assert first.shape == (6,) and first.dtype == torch.float64
    assert bool(((first >= 0) & (first <= 1)).all())


@pytest.mark.parametrize(
    ("options", "error", "pattern"),
    [
        ({"samples": 0}, ValueError, r"samples must be an int >= 1; got 0"),
        ({"samples": 2.5}, TypeError, r"samples must be an int >= 1; got 2.5"),
        ({"fraction": 0.0}, ValueError, r"fraction must be a number in \(0, 1\]; got 0.0"),
        ({"fraction": 1.5}, ValueError, r"fraction must be a number in \(0, 1\]; got 1.5"),
        ({"fraction": "most"}, TypeError, r"fraction must be a real number; got 'most'"),
        ({"transform": None}, TypeError, r"transform must be a callable .* got None"),
        ({"transform": 3}, TypeError, r"transform must be a callable .* got 3"),
        ({"transform": _crop}, ValueError, r"transform must return a tensor of x's shape"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an int >= 1; got 0"),
        ({"targeted": 1}, TypeError, r"targeted must be True or False; got 1"),
    ],
)
def test_success_rate_arguments_are_checked(batch, options, error, pattern) -> None:
    net, x, y = batch
    arguments = {"transform": identity, "samples": 2, **options}
    transform = arguments.pop("transform")
    with pytest.raises(error, match=pattern):
        transform_success_rate(net, x, y, transform, **arguments)
