"""The attack registry: the attacks a benchmark config can name, with their parameters.

Each entry wraps a function of the ``attacks`` package behind one calling convention,
``run(model, x, y, eps, *, norm, generator, **params) -> x_adv``, and declares the
parameters a config may set (with their defaults) and the norms it supports, so a
config is checked completely before any work starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from attacks import apgd, fgsm, pgd, square
from robustbench_local.adaptive import pgd_adaptive
from robustbench_local.registry import Registry

__all__ = ["ATTACKS", "AttackEntry", "attack_entry", "attack_params"]

AttackFn = Callable[..., Tensor]


@dataclass(frozen=True)
class AttackEntry:
    """How to run one registered attack.

    Attributes:
        run: (model, x (B, ...), y (B,), eps, *, norm, generator, **params) -> x_adv (B, ...).
        params: the parameters a config may set, with their defaults (their types are the
            accepted types; a default of None accepts a number).
        norms: the threat models it supports.
        description: one line for ``rbl list attacks``.
    """

    run: AttackFn
    params: Mapping[str, Any] = field(default_factory=dict)
    norms: frozenset[str] = frozenset({"linf", "l2"})
    description: str = ""


ATTACKS: Registry[AttackEntry] = Registry("attack")


def _register(name: str, entry: AttackEntry) -> None:
    frozen = AttackEntry(
        entry.run, MappingProxyType(dict(entry.params)), entry.norms, entry.description
    )
    ATTACKS.register(name, frozen, description=entry.description)


def _adapt(
    attack: Callable[..., Tensor],
    *,
    takes_norm: bool = True,
    takes_generator: bool = True,
    **fixed: Any,
) -> AttackFn:
    """The registry's calling convention over a function of the ``attacks`` package.

    Args:
        attack: e.g. ``attacks.pgd``.
        takes_norm / takes_generator: whether to pass the sweep's norm / the job's generator.
        **fixed: arguments every call gets (apgd-dlr's loss="dlr").
    """

    def run(
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        eps: float,
        *,
        norm: str,
        generator: torch.Generator | None,
        **params: Any,
    ) -> Tensor:
        given = dict(fixed)
        if takes_norm:
            given["norm"] = norm
        if takes_generator:
            given["generator"] = generator
        return attack(model, x, y, eps, **given, **params)

    return run


def attack_entry(name: str) -> AttackEntry:
    """The registered attack ``name`` (unknown names get the closest suggestion)."""
    return ATTACKS.get(name)


def attack_params(
    entry: AttackEntry, configured: Mapping[str, Any], *, stochastic: bool
) -> dict[str, Any]:
    """The parameters a job runs an attack with: defaults, then the config's choices.

    Against a stochastic model (MC dropout) a single forward pass says "fooled" only for
    those dropout masks, and the evaluation draws others; so unless the config says
    otherwise, gradient attacks return their highest-loss iterate (``select="max_loss"``,
    which early stopping cannot serve) instead of the first iterate that looked fooled.
    """
    params = dict(entry.params)
    if stochastic and "select" in params and "select" not in configured:
        params["select"] = "max_loss"
        if "early_stop" not in configured:
            params["early_stop"] = False
    params.update(configured)
    return params


_register(
    "fgsm",
    AttackEntry(
        run=_adapt(fgsm, takes_norm=False, takes_generator=False),
        params={"loss": "ce"},
        norms=frozenset({"linf"}),
        description="fast gradient sign method: one linf step of size eps",
    ),
)
_register(
    "pgd",
    AttackEntry(
        run=_adapt(pgd),
        params={
            "steps": 10,
            "step_size": None,
            "restarts": 1,
            "loss": "ce",
            "random_start": True,
            "eot_samples": 1,
            "early_stop": True,
            "select": "first_fooling",
        },
        description="projected gradient descent (Madry et al. 2018), linf or l2",
    ),
)


_APGD_PARAMS = {
    "steps": 100,
    "restarts": 1,
    "eot_samples": 1,
    "early_stop": True,
    "select": "first_fooling",
    "rho": 0.75,
    "momentum": 0.75,
}
_register(
    "apgd-ce",
    AttackEntry(
        run=_adapt(apgd, loss="ce"),
        params=_APGD_PARAMS,
        description="Auto-PGD on cross-entropy (Croce and Hein 2020), linf or l2",
    ),
)
_register(
    "apgd-dlr",
    AttackEntry(
        run=_adapt(apgd, loss="dlr"),
        params=_APGD_PARAMS,
        description="Auto-PGD on the difference-of-logits ratio (Croce and Hein 2020)",
    ),
)
_register(
    "square",
    AttackEntry(
        run=_adapt(square, takes_norm=False),
        params={"n_queries": 1000, "p_init": 0.8},
        norms=frozenset({"linf"}),
        description="Square attack: gradient-free random search (Andriushchenko et al. 2020), linf",
    ),
)


_register(
    "pgd-adaptive",
    AttackEntry(
        run=_adapt(pgd_adaptive),
        params={
            "steps": 20,
            "step_size": None,
            "restarts": 1,
            "random_start": True,
            "eot_samples": 1,
            "weight": 3.0,
            "margin_cap": 1.0,
        },
        description="PGD that fools while holding epistemic uncertainty at the clean level "
        "(tests uncertainty-based detection against an adaptive attacker)",
    ),
)
