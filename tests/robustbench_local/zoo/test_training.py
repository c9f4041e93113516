"""Tests of the training recipes: every registered recipe, determinism, defaults, bad input."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from attacks import pgd
from robustbench_local.registry import UnknownNameError
from robustbench_local.zoo.datasets import load_tensors
from robustbench_local.zoo.training import (
    HYPERPARAMETERS,
    RECIPES,
    TrainSpec,
    accuracy,
    default_hyperparameters,
    default_spec,
    ensemble_specs,
    train_model,
    validate_overrides,
)
from robustbench_local.zoo.training.loop import _augment, _batch_count, _batches, _lr_factor

pytestmark = pytest.mark.usefixtures("one_thread")


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def digits_val() -> tuple[torch.Tensor, torch.Tensor]:
    return load_tensors("digits", "val")


def test_registry_holds_the_documented_recipes() -> None:
    assert RECIPES.names() == ["fgsm_rs", "pgd_at", "standard"]
    for entry in RECIPES.items():
        assert entry.metadata["description"]


@pytest.mark.parametrize("recipe", RECIPES.names())
def test_every_recipe_trains_a_model_that_outputs_logits(recipe, digits_val) -> None:
    spec = default_spec("digits-cnn", "digits", recipe, epochs=2)
    model, result = train_model(spec, progress=True)  # not a terminal: the bar stays off
    x, y = digits_val
    logits = model(x[:7])
    assert logits.shape == (7, 10) and logits.dtype == torch.float32
    assert not any(module.training for module in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert result.key == spec.key() and result.device == "cpu" and not result.amp
    # Two epochs already learn something: far above chance (0.1), on held-out data.
    assert result.val_accuracy > 0.5
    assert result.val_accuracy == pytest.approx(accuracy(model, x, y))
    assert 0.0 <= result.train_accuracy <= 1.0 and math.isfinite(result.final_loss)


@pytest.mark.parametrize(
    ("zoo", "recipe"), [("digits-cnn", "pgd_at"), ("digits-cnn-dropout", "standard")]
)
def test_training_is_deterministic_and_seeded(zoo, recipe) -> None:
    spec = default_spec(zoo, "digits", recipe, epochs=1)
    torch.manual_seed(123)  # the caller's RNG state must not matter
    first, _ = train_model(spec)
    torch.manual_seed(456)
    second, _ = train_model(spec)
    other, _ = train_model(default_spec(zoo, "digits", recipe, epochs=1, seed=1))
    assert _same_weights(first, second)
    assert not _same_weights(first, other)


def test_training_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(7)
    before = torch.get_rng_state()
    train_model(default_spec("digits-cnn-dropout", "digits", "standard", epochs=1))
    assert torch.equal(torch.get_rng_state(), before)


def test_every_optimiser_schedule_and_augmentation_trains() -> None:
    for optimizer, schedule, augment in [
        ("sgd", "triangle", "crop_flip"),
        ("adam", "constant", "crop"),
    ]:
        spec = default_spec(
            "digits-cnn",
            "digits",
            "standard",
            epochs=1,
            optimizer=optimizer,
            schedule=schedule,
            augment=augment,
            lr=0.05 if optimizer == "sgd" else 3e-3,
        )
        model, result = train_model(spec)
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
        assert math.isfinite(result.final_loss)


def test_learning_rate_schedules_have_their_documented_shape() -> None:
    assert [_lr_factor("cosine", t) for t in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 0.5, 0.0])
    assert [_lr_factor("triangle", t) for t in (0.0, 0.2, 0.4, 0.7, 1.0)] == pytest.approx(
        [0.0, 0.5, 1.0, 0.5, 0.0]
    )
    assert _lr_factor("constant", 0.9) == 1.0


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16) + 1
    out = _augment(x, "crop", torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = nn.functional.pad(x, (2, 2, 2, 2))  # pad = 16 // 8
    for b in range(2):
        windows = [padded[b, :, i : i + 16, j : j + 16] for i in range(5) for j in range(5)]
        assert any(torch.equal(out[b], window) for window in windows)
    flipped = _augment(x, "crop_flip", torch.Generator().manual_seed(0))
    assert flipped.shape == x.shape
    assert torch.equal(_augment(x, "none", torch.Generator()), x)


def test_digits_defaults_are_the_documented_ones() -> None:
    standard = default_spec("digits-cnn", "digits", "standard")
    assert (standard.epochs, standard.batch_size, standard.optimizer, standard.lr) == (
        20,
        64,
        "adam",
        3e-3,
    )
    assert (standard.eps, standard.attack_steps, standard.step_size) == (0.0, 0, 0.0)
    assert standard.mean == (0.3053,) and standard.num_classes == 10
    at = default_spec("digits-cnn", "digits", "pgd_at")
    assert (at.eps, at.attack_steps) == (0.2, 7)
    assert at.step_size == pytest.approx(2.5 * 0.2 / 7)
    fast = default_spec("digits-cnn", "digits", "fgsm_rs")
    assert (fast.eps, fast.attack_steps, fast.step_size) == (0.2, 1, pytest.approx(0.25))
    assert default_hyperparameters("digits", "pgd_at")["attack_steps"] == 7


def test_step_size_follows_overridden_eps_unless_given() -> None:
    assert default_spec("digits-cnn", "digits", "fgsm_rs", eps=0.1).step_size == pytest.approx(
        0.125
    )
    assert default_spec("digits-cnn", "digits", "pgd_at", step_size=0.05).step_size == 0.05
    # mnist pgd_at tables Madry's 40 steps of 0.01 for eps 0.3; another eps re-derives it.
    assert default_spec("mnist-cnn", "mnist", "pgd_at").step_size == 0.01
    assert default_spec("mnist-cnn", "mnist", "pgd_at", eps=0.1).step_size == pytest.approx(
        2.5 * 0.1 / 40
    )
    cifar = default_spec("cifar-resnet18", "cifar10", "fgsm_rs")
    assert (cifar.eps, cifar.step_size, cifar.epochs) == (8 / 255, pytest.approx(10 / 255), 15)


def test_ensemble_member_zero_is_the_standard_model() -> None:
    members = ensemble_specs("digits-cnn", "digits", 5)
    assert [m.seed for m in members] == [0, 1, 2, 3, 4]
    assert members[0] == default_spec("digits-cnn", "digits", "standard", seed=0)
    assert members[0].key() == default_spec("digits-cnn", "digits", "standard").key()
    assert len({m.key() for m in members}) == 5
    with pytest.raises(ValueError, match=r"members must be an int >= 1; got 0"):
        ensemble_specs("digits-cnn", "digits", 0)


def test_spec_round_trips_through_its_dict() -> None:
    spec = default_spec("digits-cnn", "digits", "pgd_at", seed=3)
    assert TrainSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match=r"unknown \['colour'\]"):
        TrainSpec.from_dict({**spec.to_dict(), "colour": "red"})


def test_unknown_recipe_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown recipe 'pgd-at' \(did you mean 'pgd_at'"):
        default_spec("digits-cnn", "digits", "pgd-at")


def test_unknown_hyperparameter_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['epoch'\]") as err:
        default_spec("digits-cnn", "digits", "standard", epoch=3)
    assert "did you mean 'epochs'" in str(err.value)
    assert all(name in str(err.value) for name in HYPERPARAMETERS)


@pytest.mark.parametrize(
    ("recipe", "overrides", "error", "message"),
    [
        ("standard", {"epochs": 0}, ValueError, r"epochs must be an int >= 1; got 0"),
        ("standard", {"epochs": 2.5}, TypeError, r"epochs must be an int; got 2.5"),
        ("standard", {"batch_size": -4}, ValueError, r"batch_size must be an int >= 1; got -4"),
        ("standard", {"lr": 0.0}, ValueError, r"lr must be a finite number > 0.0; got 0.0"),
        ("standard", {"lr": float("nan")}, ValueError, r"lr must be a finite number"),
        ("standard", {"lr": "fast"}, TypeError, r"lr must be a real number; got 'fast'"),
        ("standard", {"momentum": 1.0}, ValueError, r"momentum must be .* < 1.0; got 1.0"),
        ("standard", {"weight_decay": -1e-4}, ValueError, r"weight_decay must be .*-0.0001"),
        ("standard", {"optimizer": "adamw"}, ValueError, r"invalid optimizer 'adamw'"),
        ("standard", {"schedule": "step"}, ValueError, r"invalid schedule 'step'"),
        ("standard", {"augment": "mixup"}, ValueError, r"invalid augment 'mixup'"),
        ("standard", {"eps": 0.1}, ValueError, r"'standard' trains on clean inputs.*'eps': 0.1"),
        ("standard", {"num_classes": 5}, ValueError, r"num_classes must match dataset 'digits'"),
        ("standard", {"mean": (0.1, 0.2)}, ValueError, r"one value per input channel \(1\)"),
        ("standard", {"std": (-0.3,)}, ValueError, r"std must be > 0 in every channel"),
        ("pgd_at", {"eps": -0.1}, ValueError, r"eps must be a finite number >= 0.0; got -0.1"),
        ("pgd_at", {"eps": 0.0}, ValueError, r"'pgd_at' needs eps > 0; got eps=0.0"),
        ("pgd_at", {"attack_steps": 0}, ValueError, r"needs attack_steps > 0; got attack_steps"),
        ("fgsm_rs", {"attack_steps": 7}, ValueError, r"exactly 1 attack step.*attack_steps=7"),
    ],
)
def test_bad_hyperparameters_name_the_argument_and_value(recipe, overrides, error, message) -> None:
    with pytest.raises(error, match=message):
        default_spec("digits-cnn", "digits", recipe, **overrides)


def test_bad_names_and_pairings_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, .*\]; got -1"):
        default_spec("digits-cnn", "digits", "standard", seed=-1)
    with pytest.raises(UnknownNameError, match=r"unknown model 'digit-cnn'"):
        default_spec("digit-cnn", "digits", "standard")
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'digit'"):
        default_spec("digits-cnn", "digit", "standard")
    with pytest.raises(ValueError, match=r"'mnist-cnn' takes inputs of shape \(1, 28, 28\)"):
        default_spec("mnist-cnn", "digits", "standard")
    with pytest.raises(ValueError, match=r"'imagefolder' takes its classes from the class folder"):
        default_spec("cifar-resnet18", "imagefolder", "standard")
    assert default_spec("cifar-resnet18", "imagefolder", "standard", num_classes=3).epochs == 30


def test_train_model_rejects_bad_arguments() -> None:
    spec = default_spec("digits-cnn", "digits", "standard", epochs=1)
    with pytest.raises(TypeError, match=r"spec must be a TrainSpec; got dict"):
        train_model(spec.to_dict())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"device must be .*; got 'gpu0'"):
        train_model(spec, device="gpu0")
    with pytest.raises(ValueError, match=r"amp=True needs a CUDA device.*device=cpu"):
        train_model(spec, amp=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device .cuda. asks for CUDA"):
            train_model(spec, device="cuda")


@pytest.mark.gpu
def test_trains_on_cuda_with_bf16_autocast() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; none is available on this machine")
    spec = default_spec("digits-cnn", "digits", "pgd_at", epochs=2)
    for amp in (False, True):
        model, result = train_model(spec, device="cuda", amp=amp)
        assert next(model.parameters()).device.type == "cuda"
        assert result.amp is amp and result.device.startswith("cuda")
        assert result.val_accuracy > 0.5


@pytest.mark.slow
def test_pgd_at_is_more_robust_than_standard_at_eps_0_1() -> None:
    x, y = load_tensors("digits", "test")

    def robust_accuracy(model: nn.Module) -> float:
        generator = torch.Generator().manual_seed(0)
        x_adv = pgd(model, x, y, 0.1, steps=40, restarts=2, generator=generator)
        return accuracy(model, x_adv, y)

    standard, _ = train_model(default_spec("digits-cnn", "digits", "standard"))
    robust, _ = train_model(default_spec("digits-cnn", "digits", "pgd_at"))
    assert accuracy(standard, x, y) >= 0.95
    assert accuracy(robust, x, y) >= 0.95
    # Measured: about 0.64 for standard and 0.88 for pgd_at.
    assert robust_accuracy(robust) >= robust_accuracy(standard) + 0.1


def test_validate_overrides_checks_names_and_values_without_a_model() -> None:
    assert validate_overrides("pgd_at", {"eps": 1, "optimizer": "sgd"}) == {
        "eps": 1.0,
        "optimizer": "sgd",
    }
    with pytest.raises(ValueError, match=r"did you mean 'attack_steps'"):
        validate_overrides("pgd_at", {"attack_step": 3})
    with pytest.raises(ValueError, match=r"'standard' trains on clean inputs"):
        validate_overrides("standard", {"eps": 0.1})
    with pytest.raises(ValueError, match=r"exactly 1 attack step"):
        validate_overrides("fgsm_rs", {"attack_steps": 2})
    with pytest.raises(TypeError, match=r"epochs must be an int; got '3'"):
        validate_overrides("standard", {"epochs": "3"})
    with pytest.raises(UnknownNameError, match=r"did you mean 'fgsm_rs'"):
        validate_overrides("fgsm-rs", {})


def test_load_or_train_is_reexported_whichever_module_is_imported_first() -> None:
    code = (
        "import robustbench_local.zoo.cache as c; "
        "from robustbench_local.zoo.training import load_or_train, load_cached; "
        "assert load_or_train is c.load_or_train and load_cached is c.load_cached"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    import robustbench_local.zoo.training as training

    with pytest.raises(AttributeError, match=r"has no attribute 'load_or_trian'"):
        training.load_or_trian  # noqa: B018


def test_a_diverged_training_raises_instead_of_returning_a_model() -> None:
    spec = default_spec("digits-cnn", "digits", "standard", epochs=1, optimizer="sgd", lr=1e30)
    with pytest.raises(FloatingPointError, match=r"diverged: mean loss .* lr=1e\+30"):
        train_model(spec)


@pytest.mark.parametrize(("n", "batch_size"), [(1077, 64), (129, 64), (64, 64), (1, 64), (7, 3)])
def test_batches_cover_the_split_once_dropping_only_a_final_singleton(n, batch_size) -> None:
    batches = _batches(n, batch_size, torch.Generator().manual_seed(0))
    assert len(batches) == _batch_count(n, batch_size)
    seen = torch.cat(batches)
    assert len(set(seen.tolist())) == len(seen)
    dropped = 1 if n % batch_size == 1 and n > batch_size else 0
    assert len(seen) == n - dropped
