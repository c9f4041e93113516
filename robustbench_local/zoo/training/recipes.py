"""Training recipes: what each optimisation step trains on.

A recipe turns a clean batch into the inputs the model is trained on (cross-entropy on those
inputs is the loss). The adversarial recipes call `attacks.pgd`, so training and evaluation share
one attack loop.

Registered recipes:

- ``standard``: clean inputs (empirical risk minimisation). A deep-ensemble member is this recipe
  with another seed; an MC-dropout model is this recipe on a ``*-dropout`` zoo architecture.
- ``pgd_at``: PGD adversarial training (Madry et al. 2018): each batch is replaced by a linf PGD
  attack with a random start, ``attack_steps`` steps of ``step_size`` inside the eps-ball.
  The attack returns, per sample, its first iterate that fools the model, else the one with the
  highest loss (the `attacks` convention), not always the last iterate.
- ``fgsm_rs``: "Fast is better than free" (Wong et al. 2020): one FGSM step of ``step_size``
  (1.25 * eps by default) from a uniform random start in the eps-ball, projected back onto it,
  which is exactly ``pgd(steps=1, random_start=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attacks import pgd
from robustbench_local.registry import Registry

__all__ = ["RECIPES", "MakeInputs", "Recipe"]

MakeInputs = Callable[..., Tensor]
"""``make_inputs(model, x, y, *, eps, steps, step_size, generator) -> inputs``.

x (B, C, H, W) clean inputs in [0, 1], y (B,) labels; returns (B, C, H, W) training inputs.
The model may be switched to eval mode meanwhile but must be left in its training mode.
"""


@dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Args:
        name: the registered name.
        description: one line for listings.
        adversarial: whether it reads the attack fields (eps, attack_steps, step_size); when
            False they must be 0 in a spec, so equal models get equal cache keys.
        fixed_steps: the attack_steps the recipe is defined with (fgsm_rs: 1), or None if free.
        step_size_factor: default step_size = factor * eps / attack_steps.
        make_inputs: the inputs each step trains on (see `MakeInputs`).
    """

    name: str
    description: str
    adversarial: bool
    fixed_steps: int | None
    step_size_factor: float
    make_inputs: MakeInputs

    def default_step_size(self, eps: float, attack_steps: int) -> float:
        """The step size used when a spec does not set one (0.0 for clean recipes)."""
        if not self.adversarial or attack_steps < 1:
            return 0.0
        return self.step_size_factor * eps / attack_steps


def _clean_inputs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> Tensor:
    return x


def _linf_pgd_inputs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> Tensor:
    # pgd runs the model in eval mode (BatchNorm on running statistics) and restores train mode.
    # Madry et al. train on the inputs that maximise the loss: the highest-loss iterate, not the
    # first one that fools (which would be early-stopped, "friendly" adversarial training).
    return pgd(
        model,
        x,
        y,
        eps,
        norm="linf",
        steps=steps,
        step_size=step_size,
        random_start=True,
        select="max_loss",
        generator=generator,
    )


RECIPES: Registry[Recipe] = Registry("recipe")


def _register(recipe: Recipe) -> None:
    RECIPES.register(recipe.name, recipe, description=recipe.description)


_register(
    Recipe(
        name="standard",
        description="clean training (also deep-ensemble members and MC-dropout models)",
        adversarial=False,
        fixed_steps=None,
        step_size_factor=0.0,
        make_inputs=_clean_inputs,
    )
)
_register(
    Recipe(
        name="pgd_at",
        description="PGD adversarial training (Madry et al. 2018), linf, random start",
        adversarial=True,
        fixed_steps=None,
        step_size_factor=2.5,  # the attacks.pgd default: 2.5 * eps / steps
        make_inputs=_linf_pgd_inputs,
    )
)
_register(
    Recipe(
        name="fgsm_rs",
        description="FGSM from a random start, step 1.25 eps (Wong et al. 2020, fast AT)",
        adversarial=True,
        fixed_steps=1,
        step_size_factor=1.25,
        make_inputs=_linf_pgd_inputs,
    )
)
