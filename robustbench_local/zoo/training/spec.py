"""What to train: `TrainSpec`, its validation, its cache key and the per-dataset defaults.

A spec names everything that decides the trained weights, so that two equal specs train the same
model and `TrainSpec.key` can name a cache entry. Build specs with `default_spec`, which fills the
per-dataset defaults below and validates overrides.

Default hyper-parameters (``default_spec(zoo, dataset, recipe)``; eps and step sizes are linf,
in pixel units [0, 1]):

- digits: Adam lr 3e-3, 20 epochs, batch 64, cosine schedule, no augmentation.
  pgd_at: eps 0.2, 7 steps of 2.5 * eps / 7. fgsm_rs: eps 0.2, step 1.25 * eps.
- mnist: Adam lr 1e-3, 10 epochs, batch 128, cosine, no augmentation.
  pgd_at: 20 epochs, eps 0.3, 40 steps of 0.01 (Madry et al.).
  fgsm_rs: triangle schedule peaking at lr 5e-3, eps 0.3, step 0.375 (Wong et al.).
- fashion-mnist: as mnist with eps 0.1 (pgd_at: 40 steps of 2.5 * eps / 40).
- cifar10: SGD lr 0.1, momentum 0.9, weight decay 5e-4, 100 epochs, batch 128, cosine, random
  crop + flip. pgd_at: eps 8/255, 10 steps of 2/255.
  fgsm_rs: 15 epochs, triangle peaking at lr 0.2, eps 8/255, step 10/255.
- svhn: as cifar10 with lr 0.01, 30 epochs and random crop without flip;
  fgsm_rs: 15 epochs, triangle peaking at lr 0.05.
- any other dataset (e.g. imagefolder): SGD lr 0.05, momentum 0.9, weight decay 5e-4,
  30 epochs, batch 128, cosine, no augmentation; eps 8/255, pgd_at 10 steps.

``standard`` pins eps, attack_steps and step_size to 0, and ``fgsm_rs`` pins attack_steps to 1.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import torch

from robustbench_local.registry import parse_option
from robustbench_local.zoo.datasets import (
    DATASETS,
    count_classes,
    data_fingerprint,
    dataset_info,
)
from robustbench_local.zoo.models import create_model, model_info
from robustbench_local.zoo.training.recipes import RECIPES, Recipe

__all__ = [
    "HYPERPARAMETERS",
    "RECIPE_VERSION",
    "Augment",
    "Optimizer",
    "Schedule",
    "TrainSpec",
    "default_hyperparameters",
    "default_spec",
    "ensemble_specs",
    "validate_overrides",
    "with_data_fingerprint",
]

# Bump whenever a change to the training code (loop, recipes, augmentation, schedules, data
# order) changes the weights that a spec trains: every cached model is then retrained.
RECIPE_VERSION = 2

_MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed accepts up to this


class Optimizer(str, Enum):
    """The optimiser: SGD with momentum, or Adam (momentum is its beta1)."""

    SGD = "sgd"
    ADAM = "adam"


class Schedule(str, Enum):
    """Learning-rate schedule over all steps: constant, cosine to 0, or a triangle (0 -> lr at
    40% of training -> 0, the cyclic schedule of Wong et al. 2020)."""

    CONSTANT = "constant"
    COSINE = "cosine"
    TRIANGLE = "triangle"


class Augment(str, Enum):
    """Training-set augmentation: none, random crop (pad H/8, zero fill), or crop and h-flip."""

    NONE = "none"
    CROP = "crop"
    CROP_FLIP = "crop_flip"


@dataclass(frozen=True)
class TrainSpec:
    """Everything that decides a trained model; equal specs train equal weights (on one device).

    Args:
        zoo: zoo architecture (``robustbench_local.zoo.MODELS``).
        dataset: training dataset (``robustbench_local.zoo.datasets.DATASETS``); trains on "train",
            reports accuracy on "val".
        recipe: training recipe (``RECIPES``).
        seed: seeds the weight init, the data order, augmentation, dropout and attack starts.
        num_classes: K, the model's output size.
        mean: Normalize mean (C,) inside the model.
        std: Normalize std (C,) inside the model.
        epochs: passes over the training split (>= 1).
        batch_size: examples per step (>= 1).
        optimizer: "sgd" or "adam".
        lr: peak learning rate (> 0).
        momentum: SGD momentum, or Adam's beta1, in [0, 1).
        weight_decay: L2 penalty (>= 0), on every parameter.
        schedule: "constant", "cosine" or "triangle", stepped every batch.
        augment: "none", "crop" or "crop_flip".
        eps: linf radius of the training attack (0 for "standard").
        attack_steps: attack steps per batch (0 for "standard", 1 for "fgsm_rs").
        step_size: attack step size (0 for "standard").
        data_fingerprint: for a dataset of the user's own files (``imagefolder``), the digest
            of the training files (`datasets.data_fingerprint`), so a model trained on other
            images is never reused; "" for datasets whose name fixes their content. The
            cache fills it in from data_root.
    """

    zoo: str
    dataset: str
    recipe: str
    seed: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    augment: str
    eps: float
    attack_steps: int
    step_size: float
    data_fingerprint: str = ""

    def __post_init__(self) -> None:
        model = model_info(self.zoo)  # unknown names: UnknownNameError with the closest names
        data = dataset_info(self.dataset)
        recipe = RECIPES.get(self.recipe)
        for name, check in _FIELD_CHECKS.items():
            object.__setattr__(self, name, check(getattr(self, name)))
        if not isinstance(self.data_fingerprint, str):
            raise TypeError(f"data_fingerprint must be a str; got {self.data_fingerprint!r}")
        if self.data_fingerprint and not data.user_files:
            raise ValueError(
                f"data_fingerprint must be empty for dataset {self.dataset!r} (its name fixes "
                f"its content); got {self.data_fingerprint!r}"
            )
        _check_normalisation(self.mean, self.std, model.input_shape[0])
        _check_pairing(self, model.input_shape, data.input_shape, data.num_classes)
        _check_attack_fields(
            recipe,
            {"eps": self.eps, "attack_steps": self.attack_steps, "step_size": self.step_size},
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (tuples become lists), in declaration order."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainSpec:
        """Rebuild a spec from `to_dict` output, rejecting missing or unknown fields."""
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of TrainSpec fields; got {values!r}")
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        missing = [name for name in names if name not in values]
        if unknown or missing:
            raise ValueError(
                f"values must hold exactly the TrainSpec fields {names}; "
                f"unknown {unknown}, missing {missing}"
            )
        return cls(**values)

    def key_material(self) -> dict[str, Any]:
        """What the cache key hashes: the spec, RECIPE_VERSION, torch major.minor and a
        fingerprint of the architecture (its layers, their settings and tensor shapes), so that
        an edited zoo model is retrained. An edit inside a forward method is not seen: bump
        RECIPE_VERSION for one."""
        return {
            "spec": self.to_dict(),
            "recipe_version": RECIPE_VERSION,
            "torch": torch_major_minor(),
            "architecture": _architecture_fingerprint(
                self.zoo, self.num_classes, self.mean, self.std
            ),
        }

    def key(self) -> str:
        """A stable sha256 hex digest (64 chars) of the canonical JSON of `key_material`."""
        return hashlib.sha256(canonical_json(self.key_material()).encode("utf-8")).hexdigest()


HYPERPARAMETERS: tuple[str, ...] = tuple(
    field.name
    for field in dataclasses.fields(TrainSpec)
    if field.name not in ("zoo", "dataset", "recipe", "seed", "data_fingerprint")
)
"""The TrainSpec fields that `default_spec` fills and accepts as overrides."""


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def torch_major_minor() -> str:
    """The installed torch's "major.minor" (e.g. "2.11"): kernels may change between them."""
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


@lru_cache(maxsize=64)
def _architecture_fingerprint(
    zoo: str, num_classes: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> str:
    """sha256 of the model's repr (layer types and settings) and its state-dict shapes."""
    # fork_rng: building the model draws its initial weights from the global RNG.
    with torch.random.fork_rng(devices=[]):
        model = create_model(zoo, num_classes=num_classes, mean=mean, std=std)
    shapes = [[name, list(t.shape)] for name, t in model.state_dict().items()]
    text = repr(model) + canonical_json(shapes)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _int(argument: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int; got {value!r} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        expected = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{argument} must be an int {expected}; got {value}")
    return int(value)


def _float(
    argument: str,
    value: object,
    low: float,
    *,
    low_open: bool = False,
    high: float | None = None,
) -> float:
    """A finite float >= low (> low if low_open) and < high (when given)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a real number; got {value!r} ({type(value).__name__})")
    number = float(value)
    too_low = number <= low if low_open else number < low
    if not math.isfinite(number) or too_low or (high is not None and number >= high):
        expected = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high else "")
        raise ValueError(f"{argument} must be a finite number {expected}; got {value!r}")
    return number


def _floats(argument: str, values: object) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{argument} must be a non-empty sequence of floats; got {values!r}")
    return tuple(_float(f"{argument}[{i}]", v, -math.inf) for i, v in enumerate(values))


def _check_normalisation(mean: tuple[float, ...], std: tuple[float, ...], channels: int) -> None:
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"mean and std must have one value per input channel ({channels}); "
            f"got mean={mean}, std={std}"
        )
    if min(std) <= 0:
        raise ValueError(f"std must be > 0 in every channel; got std={std}")


def _check_pairing(
    spec: TrainSpec,
    model_shape: tuple[int, ...],
    data_shape: tuple[int, ...],
    data_classes: int | None,
) -> None:
    """The architecture must accept the dataset's images and classes."""
    if tuple(model_shape) != tuple(data_shape):
        raise ValueError(
            f"zoo model {spec.zoo!r} takes inputs of shape {tuple(model_shape)} but dataset "
            f"{spec.dataset!r} has images of shape {tuple(data_shape)}; pick a model listed "
            f"for that dataset (rbl list models)"
        )
    if data_classes is not None and spec.num_classes != data_classes:
        raise ValueError(
            f"num_classes must match dataset {spec.dataset!r}, which has {data_classes} "
            f"classes; got num_classes={spec.num_classes}"
        )


def _check_attack_fields(recipe: Recipe, values: Mapping[str, Any]) -> None:
    """Clean recipes pin the attack fields to 0; adversarial ones need a real attack.

    Args:
        recipe: the recipe.
        values: validated values of any of eps, attack_steps and step_size (others ignored).
    """
    attack = {n: values[n] for n in ("eps", "attack_steps", "step_size") if n in values}
    if not recipe.adversarial:
        used = {name: value for name, value in attack.items() if value != 0}
        if used:
            raise ValueError(
                f"recipe {recipe.name!r} trains on clean inputs, so eps, attack_steps and "
                f"step_size must be 0; got {used}"
            )
        return
    for name, value in attack.items():
        if value <= 0:
            raise ValueError(f"recipe {recipe.name!r} needs {name} > 0; got {name}={value}")
    steps = attack.get("attack_steps")
    if recipe.fixed_steps is not None and steps is not None and steps != recipe.fixed_steps:
        raise ValueError(
            f"recipe {recipe.name!r} takes exactly {recipe.fixed_steps} attack step(s) by "
            f"definition; got attack_steps={steps}"
        )


_FIELD_CHECKS: dict[str, Callable[[object], Any]] = {
    "seed": lambda v: _int("seed", v, 0, _MAX_SEED),
    "num_classes": lambda v: _int("num_classes", v, 2),
    "mean": lambda v: _floats("mean", v),
    "std": lambda v: _floats("std", v),
    "epochs": lambda v: _int("epochs", v, 1),
    "batch_size": lambda v: _int("batch_size", v, 1),
    "optimizer": lambda v: parse_option(Optimizer, v, "optimizer").value,
    "lr": lambda v: _float("lr", v, 0.0, low_open=True),
    "momentum": lambda v: _float("momentum", v, 0.0, high=1.0),
    "weight_decay": lambda v: _float("weight_decay", v, 0.0),
    "schedule": lambda v: parse_option(Schedule, v, "schedule").value,
    "augment": lambda v: parse_option(Augment, v, "augment").value,
    "eps": lambda v: _float("eps", v, 0.0),
    "attack_steps": lambda v: _int("attack_steps", v, 0),
    "step_size": lambda v: _float("step_size", v, 0.0),
}
"""Per-field validation and normalisation (ints stay ints, numbers become floats, options
become their string values), shared by TrainSpec and validate_overrides."""


def _check_names(overrides: Mapping[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(HYPERPARAMETERS))
    if unknown:
        close = [m for name in unknown for m in difflib.get_close_matches(name, HYPERPARAMETERS)]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"unknown hyper-parameter(s) {unknown}{hint}; valid hyper-parameters are "
            f"{list(HYPERPARAMETERS)}"
        )


def validate_overrides(recipe: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Check hyper-parameter overrides for a recipe before any zoo model or dataset is known
    (config validation); `default_spec` checks them again in full.

    Args:
        recipe: a registered recipe name.
        overrides: hyper-parameter name -> value, as for `default_spec`.

    Returns:
        the overrides, normalised (numbers as float or int, options as strings).

    Raises:
        ValueError / TypeError: an unknown name (the valid ones are listed) or a bad value.
        UnknownNameError: an unknown recipe (the closest names are suggested).
    """
    chosen = RECIPES.get(recipe)
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping of hyper-parameters; got {overrides!r}")
    _check_names(overrides)
    values = {name: _FIELD_CHECKS[name](value) for name, value in overrides.items()}
    _check_attack_fields(chosen, values)
    return values


# Per-dataset defaults: a base for every recipe, then per-recipe changes. step_size, when absent,
# is the recipe's default (Recipe.default_step_size) for the final eps and attack_steps.
_BASE: dict[str, dict[str, Any]] = {
    "digits": dict(
        epochs=20,
        batch_size=64,
        optimizer="adam",
        lr=3e-3,
        momentum=0.9,
        weight_decay=0.0,
        schedule="cosine",
        augment="none",
        eps=0.2,
        attack_steps=7,
    ),
    "mnist": dict(
        epochs=10,
        batch_size=128,
        optimizer="adam",
        lr=1e-3,
        momentum=0.9,
        weight_decay=0.0,
        schedule="cosine",
        augment="none",
        eps=0.3,
        attack_steps=40,
    ),
    "cifar10": dict(
        epochs=100,
        batch_size=128,
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="cosine",
        augment="crop_flip",
        eps=8 / 255,
        attack_steps=10,
    ),
    "other": dict(
        epochs=30,
        batch_size=128,
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="cosine",
        augment="none",
        eps=8 / 255,
        attack_steps=10,
    ),
}
_BASE["fashion-mnist"] = {**_BASE["mnist"], "eps": 0.1}
_BASE["svhn"] = {**_BASE["cifar10"], "lr": 0.01, "epochs": 30, "augment": "crop"}

_PER_RECIPE: dict[tuple[str, str], dict[str, Any]] = {
    ("mnist", "pgd_at"): dict(epochs=20, step_size=0.01),
    ("mnist", "fgsm_rs"): dict(schedule="triangle", lr=5e-3),
    ("fashion-mnist", "pgd_at"): dict(epochs=20),
    ("fashion-mnist", "fgsm_rs"): dict(schedule="triangle", lr=5e-3),
    ("cifar10", "pgd_at"): dict(step_size=2 / 255),
    ("cifar10", "fgsm_rs"): dict(epochs=15, schedule="triangle", lr=0.2),
    ("svhn", "pgd_at"): dict(step_size=2 / 255),
    ("svhn", "fgsm_rs"): dict(epochs=15, schedule="triangle", lr=0.05),
}


def default_hyperparameters(dataset: str, recipe: str) -> dict[str, Any]:
    """The documented defaults for a dataset and recipe.

    Args:
        dataset: a registered dataset name; datasets without their own row use "other".
        recipe: a registered recipe name.

    Returns:
        hyper-parameter name -> value for every name in HYPERPARAMETERS but num_classes, mean
        and std (which come from the dataset).
    """
    DATASETS.get(dataset)
    return _resolve(dataset, RECIPES.get(recipe), {})


def _resolve(dataset: str, recipe: Recipe, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then overrides, then the attack fields the recipe pins or derives."""
    row = dataset if dataset in _BASE else "other"
    tabled = _PER_RECIPE.get((row, recipe.name), {})
    values: dict[str, Any] = {**_BASE[row], **tabled, **overrides}
    if not recipe.adversarial:
        for name in ("eps", "attack_steps", "step_size"):
            if name not in overrides:
                values[name] = 0 if name == "attack_steps" else 0.0
        return values
    if recipe.fixed_steps is not None and "attack_steps" not in overrides:
        values["attack_steps"] = recipe.fixed_steps
    # A tabled step size belongs to the tabled eps and steps; overriding either re-derives it.
    keep_tabled = "step_size" in tabled and not {"eps", "attack_steps"} & set(overrides)
    if "step_size" not in overrides and not keep_tabled:
        eps, steps = values["eps"], values["attack_steps"]
        valid = (
            isinstance(eps, (int, float))
            and not isinstance(eps, bool)
            and isinstance(steps, int)
            and not isinstance(steps, bool)
            and steps >= 1
        )
        # Invalid eps/steps are left for TrainSpec to reject with a message naming them.
        values["step_size"] = recipe.default_step_size(float(eps), steps) if valid else 1.0
    return values


def with_data_fingerprint(spec: TrainSpec, data_root: str | os.PathLike[str] | None) -> TrainSpec:
    """spec with its data_fingerprint filled in from the files under data_root.

    A no-op for datasets whose name fixes their content, and for a spec that already has
    one (computed once per run, not once per ensemble member).

    Args:
        spec: the training spec.
        data_root: the dataset's folder.

    Returns:
        the spec to key the cache with.
    """
    if not isinstance(spec, TrainSpec):
        raise TypeError(f"spec must be a TrainSpec; got {type(spec).__name__}")
    if spec.data_fingerprint or not dataset_info(spec.dataset).user_files:
        return spec
    return dataclasses.replace(spec, data_fingerprint=data_fingerprint(spec.dataset, data_root))


def default_spec(
    zoo: str,
    dataset: str,
    recipe: str,
    *,
    seed: int = 0,
    data_root: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> TrainSpec:
    """A validated spec with the documented defaults for the dataset and recipe.

    Overriding eps or attack_steps re-derives the recipe's default step_size unless step_size is
    overridden too. num_classes, mean and std default to the dataset's; for a dataset whose
    classes are the user's class folders (``imagefolder``), num_classes is their number under
    data_root, and an override must agree with it.

    Args:
        zoo: a registered zoo architecture, e.g. "digits-cnn" (or "digits-cnn-dropout" for MC
            dropout).
        dataset: a registered dataset, e.g. "digits".
        recipe: "standard", "pgd_at" or "fgsm_rs" (see ``RECIPES``).
        seed: the training seed (>= 0).
        data_root: the dataset's folder; read only for ``imagefolder``'s class folders.
        **overrides: hyper-parameters to change, any of HYPERPARAMETERS.

    Returns:
        the `TrainSpec`.

    Raises:
        ValueError: an unknown hyper-parameter (the valid ones are listed), or a bad value.
        UnknownNameError: an unknown zoo, dataset or recipe (the closest names are suggested).
    """
    chosen = RECIPES.get(recipe)
    _check_names(overrides)
    info = dataset_info(dataset)
    values = _resolve(dataset, chosen, overrides)
    if info.num_classes is not None:
        values.setdefault("num_classes", info.num_classes)
    elif data_root is not None:
        # The class folders define K: asking the user to count them invites a mismatch.
        found = count_classes(dataset, data_root)
        if values.setdefault("num_classes", found) != found:
            raise ValueError(
                f"num_classes must match the {found} class folders of dataset {dataset!r} "
                f"under {str(data_root)!r}; got num_classes={values['num_classes']!r}"
            )
    elif "num_classes" not in overrides:
        raise ValueError(
            f"dataset {dataset!r} takes its classes from the class folders under data_root: "
            f"pass data_root (or num_classes=K)"
        )
    values.setdefault("mean", info.mean)
    values.setdefault("std", info.std)
    return TrainSpec(zoo=zoo, dataset=dataset, recipe=recipe, seed=seed, **values)


def ensemble_specs(
    zoo: str, dataset: str, members: int, *, first_seed: int = 0, **overrides: Any
) -> list[TrainSpec]:
    """Specs of deep-ensemble members: the "standard" recipe with seeds first_seed, +1, ...

    Member ``first_seed`` is the very spec ``default_spec(zoo, dataset, "standard",
    seed=first_seed)``, so it shares that model's cache entry.

    Args:
        zoo: a registered zoo architecture.
        dataset: a registered dataset.
        members: number of members M (>= 1).
        first_seed: seed of the first member (>= 0).
        **overrides: hyper-parameters, as in `default_spec`.

    Returns:
        M specs differing only in their seed.
    """
    members = _int("members", members, 1)
    first_seed = _int("first_seed", first_seed, 0, _MAX_SEED - members)
    return [
        default_spec(zoo, dataset, "standard", seed=first_seed + i, **overrides)
        for i in range(members)
    ]
