"""Training recipes for the local model zoo.

    from robustbench_local.zoo.training import default_spec, train_model
    spec = default_spec("digits-cnn", "digits", "pgd_at", seed=0)
    model, result = train_model(spec)      # model in eval mode; result.val_accuracy, ...

`load_or_train` (and `load_cached`) live in `robustbench_local.zoo.cache`, which imports this
package; they are re-exported here lazily, on first access, so that either import order works.

- `recipes`: the RECIPES registry (standard, pgd_at, fgsm_rs).
- `spec`: TrainSpec, its cache key, and the per-dataset defaults (default_spec).
- `loop`: train_model, the one seeded training loop.
"""

from typing import Any

from robustbench_local.zoo.training.loop import TrainResult, accuracy, train_model
from robustbench_local.zoo.training.recipes import RECIPES, Recipe
from robustbench_local.zoo.training.spec import (
    HYPERPARAMETERS,
    RECIPE_VERSION,
    Augment,
    Optimizer,
    Schedule,
    TrainSpec,
    default_hyperparameters,
    default_spec,
    ensemble_specs,
    validate_overrides,
    with_data_fingerprint,
)

__all__ = [
    "HYPERPARAMETERS",
    "RECIPES",
    "RECIPE_VERSION",
    "Augment",
    "Optimizer",
    "Recipe",
    "Schedule",
    "TrainResult",
    "TrainSpec",
    "accuracy",
    "default_hyperparameters",
    "default_spec",
    "ensemble_specs",
    "load_cached",
    "load_or_train",
    "train_model",
    "validate_overrides",
    "with_data_fingerprint",
]

_FROM_CACHE = ("load_cached", "load_or_train")


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): robustbench_local.zoo.cache imports this package, so importing it eagerly
    # here would be circular whenever cache is imported first.
    if name in _FROM_CACHE:
        from robustbench_local.zoo import cache

        return getattr(cache, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
