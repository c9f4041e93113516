"""Bad input raises ValueError/TypeError naming the argument, the value and what was expected."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from attacks import fgsm, pgd


@pytest.fixture
def batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    return model, torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 3])


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"eps": -0.1}, ValueError, r"eps must be a finite number >= 0; got -0.1"),
        ({"eps": float("inf")}, ValueError, r"eps .* got inf"),
        ({"eps": float("nan")}, ValueError, r"eps .* got nan"),
        ({"eps": "0.1"}, TypeError, r"eps must be a real number; got '0.1'"),
        ({"steps": 0}, ValueError, r"steps must be an int >= 1; got 0"),
        ({"steps": 2.5}, TypeError, r"steps must be an int >= 1; got 2.5"),
        ({"restarts": 0}, ValueError, r"restarts must be an int >= 1; got 0"),
        ({"eot_samples": 0}, ValueError, r"eot_samples must be an int >= 1; got 0"),
        ({"norm": "l3"}, ValueError, r"norm must be one of 'linf', 'l2'; got 'l3'"),
        ({"loss": "hinge"}, ValueError, r"loss must be one of 'ce', 'margin', 'dlr'; got 'hinge'"),
        ({"loss": 3}, TypeError, r"loss must be a name or a callable"),
        ({"step_size": -1.0}, ValueError, r"step_size must be a finite number >= 0; got -1.0"),
        ({"bounds": (1.0, 0.0)}, ValueError, r"bounds must satisfy low < high; got \(1.0, 0.0\)"),
        ({"bounds": (0.0,)}, TypeError, r"bounds must be a pair"),
        ({"generator": "0"}, TypeError, r"generator must be a torch.Generator, an int seed or "),
        ({"generator": True}, TypeError, r"generator must be .* or None; got True"),
        (
            {"generator": 2**64},
            ValueError,
            r"generator must be .* an int seed that fits in 64 bits",
        ),
        ({"callback": "print"}, TypeError, r"callback must be a callable \(StepInfo\) -> None"),
        ({"early_stop": "yes"}, TypeError, r"early_stop must be True, False or None; got 'yes'"),
        ({"select": "last"}, ValueError, r"select must be one of 'first_fooling', 'max_loss'"),
    ],
)
def test_bad_arguments(batch, kwargs, error, pattern) -> None:
    model, x, y = batch
    arguments = {"eps": 0.1, **kwargs}
    eps = arguments.pop("eps")
    with pytest.raises(error, match=pattern):
        pgd(model, x, y, eps, **arguments)


def test_x_outside_bounds_names_the_range(batch) -> None:
    model, x, y = batch
    with pytest.raises(
        ValueError,
        match=r"x must lie within bounds=\(0.0, 1.0\).*got values in \[0.3\d*, 249.9\d*\]",
    ):
        fgsm(model, x * 255.0, y, 0.1)
    # Round-off within 1e-6 of a bound is accepted.
    fgsm(model, x.clamp(0, 1) + 5e-7, y, 0.1)


def test_non_finite_x(batch) -> None:
    model, x, y = batch
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"x must be finite; got 1 NaN or infinite values"):
        pgd(model, x, y, 0.1)


@pytest.mark.parametrize(
    ("labels", "error", "pattern"),
    [
        (torch.tensor([0, 1]), ValueError, r"y must have shape \(3,\) to match x; got \(2,\)"),
        (torch.tensor([[0], [1], [2]]), ValueError, r"y must have shape \(3,\)"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, r"y must hold integer class labels"),
        (torch.tensor([0, 1, 4]), ValueError, r"labels in \[0, 4\) .* got values in \[0, 4\]"),
        (torch.tensor([-1, 1, 2]), ValueError, r"labels in \[0, 4\)"),
    ],
)
def test_bad_labels(batch, labels, error, pattern) -> None:
    model, x, _ = batch
    with pytest.raises(error, match=pattern):
        pgd(model, x, labels, 0.1)


def test_model_output_must_be_batch_by_classes(batch) -> None:
    _, x, y = batch
    flat = nn.Sequential(nn.Flatten(), nn.Linear(16, 1), nn.Flatten(0))  # (B,) not (B, K)
    with pytest.raises(ValueError, match=r"model output must be logits of shape \(B, K\)"):
        fgsm(flat, x, y, 0.1)
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module; got function"):
        fgsm(lambda t: t, x, y, 0.1)


def test_dlr_needs_three_classes() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"loss 'dlr' needs at least 3 classes; .* K=2"):
        pgd(model, torch.rand(2, 4), torch.tensor([0, 1]), 0.1, loss="dlr")


def test_callable_loss_must_be_per_sample(batch) -> None:
    model, x, y = batch

    def mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)

    with pytest.raises(ValueError, match=r"loss mean_loss must return .* shape \(3,\); got \(\)"):
        pgd(model, x, y, 0.1, loss=mean_loss)


def test_x_must_be_a_float_tensor(batch) -> None:
    model, x, y = batch
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor; got ndarray"):
        pgd(model, x.numpy(), y, 0.1)
    with pytest.raises(
        TypeError, match=r"x must be a floating-point tensor; got dtype torch.uint8"
    ):
        pgd(model, (x * 255).to(torch.uint8), y, 0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"norm": "l3"}, ValueError, r"norm must be one of 'linf', 'l2'; got 'l3'"),
        ({"generator": 0.5}, TypeError, r"generator must be a torch.Generator, an int seed"),
        ({"loss": "hinge"}, ValueError, r"loss must be one of 'ce', 'margin', 'dlr'; got 'hinge'"),
    ],
)
def test_fgsm_bad_arguments(batch, kwargs, error, pattern) -> None:
    model, x, y = batch
    with pytest.raises(error, match=pattern):
        fgsm(model, x, y, 0.1, **kwargs)


@pytest.mark.parametrize(
    ("attack", "options", "error", "pattern"),
    [
        ("pgd", {"steps": 0}, ValueError, r"steps must be an int >= 1; got 0"),
        ("pgd", {"select": "bogus"}, ValueError, r"select must be one of"),
        ("pgd", {"early_stop": True, "select": "max_loss"}, ValueError, r"early_stop=True"),
        ("pgd", {"stepz": 3}, TypeError, r"pgd has no option 'stepz'"),
        ("apgd", {"rho": 2}, ValueError, r"rho must be a number in \[0, 1\]; got 2"),
        ("fgsm", {"norm": "l1"}, ValueError, r"norm must be one of"),
        ("square", {"p_init": 2}, ValueError, r"p_init must be a number in \(0, 1\]"),
        ("square", {"norm": "l2"}, ValueError, r"norm must be 'linf'"),
        ("deepfool", {"overshoot": -0.1}, ValueError, r"overshoot must be a finite number >= 0"),
        ("deepfool", {"candidates": 1}, ValueError, r"candidates must be an int >= 2 or None"),
        ("deepfool", {"norm": "l1"}, ValueError, r"norm must be one of 'linf', 'l2'"),
        ("deepfool", {"eps": 0.1}, TypeError, r"deepfool has no option 'eps'"),
    ],
)
def test_validate_options_applies_the_attacks_own_rules(attack, options, error, pattern) -> None:
    # The rules a benchmark config is checked with before any work starts.
    module = importlib.import_module(f"attacks.{attack}")
    with pytest.raises(error, match=pattern):
        module.validate_options(**options)
    module.validate_options()  # nothing given, nothing wrong


@pytest.mark.parametrize("attack", ["pgd", "apgd", "square", "fgsm"])
def test_an_int_seed_is_a_seeded_generator(batch, attack: str) -> None:
    model, x, y = batch
    module = importlib.import_module(f"attacks.{attack}")
    run = getattr(module, attack)
    budget = {"pgd": {"steps": 2}, "apgd": {"steps": 2}, "square": {"n_queries": 5}, "fgsm": {}}
    seeded = run(model, x, y, 0.1, generator=7, **budget[attack])
    expected = run(model, x, y, 0.1, generator=torch.Generator().manual_seed(7), **budget[attack])
    assert torch.equal(seeded, expected)
    if attack in ("pgd", "square"):  # fgsm draws nothing; apgd's 2 steps of 2 * eps reach
        # the same corners of the ball from any start
        other = run(model, x, y, 0.1, generator=8, **budget[attack])
        assert not torch.equal(seeded, other)
