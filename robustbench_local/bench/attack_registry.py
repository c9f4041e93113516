"""The attack registry: the attacks a benchmark config can name, with their parameters.

Each entry wraps a function of the ``attacks`` package behind one calling convention,
``run(model, x, y, eps, *, norm, generator, **params) -> x_adv``, and declares the
parameters a config may set (with their defaults) and the norms it supports, so a
config is checked completely before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from attacks import apgd, fgsm, pgd, square
from robustbench_local.bench.adaptive import pgd_adaptive
from robustbench_local.registry import Registry
from robustbench_local.results.schema import ADAPTIVE_NOTE, KINDS, AttackInfo, AttackKind

__all__ = [
    "ADAPTIVE_NOTE",
    "ATTACKS",
    "KINDS",
    "AttackEntry",
    "AttackKind",
    "attack_entry",
    "attack_info",
    "attack_params",
]

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
        kind: what its robust accuracy means, for the gradient-masking checks and the
            report. "gradient": follows input gradients to maximise a loss (its row is an
            upper bound on robust accuracy); "gradient-free": needs outputs only (the
            check on masked gradients); "adaptive": optimises something else than
            misclassification (detection evasion), so its row is not a robustness bound.
        iterative: False for a single gradient step (fgsm); an iterative gradient attack
            that loses to a single step is failing to optimise.
        fixed_loss: the loss the attack always maximises when ``params`` has no "loss"
            (apgd-ce's "ce"); None where it has none (an own objective, or no gradient).
    """

    run: AttackFn
    params: Mapping[str, Any] = field(default_factory=dict)
    norms: frozenset[str] = frozenset({"linf", "l2"})
    description: str = ""
    kind: AttackKind = "gradient"
    iterative: bool = True
    fixed_loss: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")

    def loss(self, params: Mapping[str, Any]) -> str | None:
        """The loss a job with these parameters maximises ("ce", "margin", ...), if named."""
        loss = params.get("loss", self.fixed_loss)
        return loss if isinstance(loss, str) else None


ATTACKS: Registry[AttackEntry] = Registry("attack")


def _register(name: str, entry: AttackEntry) -> None:
    frozen = dataclasses.replace(entry, params=MappingProxyType(dict(entry.params)))
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
        **fixed: arguments every call gets (apgd-dlr's loss="dlr") unless the caller passes
            its own: a config cannot (they are not in the entry's params), but the runner
            re-attacks saturated samples with loss="margin" (see runner's margin fallback).
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
        given.update(params)
        return attack(model, x, y, eps, **given)

    return run


def attack_info(name: str) -> AttackInfo:
    """What readers of results need to know of the registered attack ``name``."""
    entry = ATTACKS.get(name)
    return AttackInfo(name, entry.kind, entry.iterative)


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
        iterative=False,
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
        fixed_loss="ce",
    ),
)
_register(
    "apgd-dlr",
    AttackEntry(
        run=_adapt(apgd, loss="dlr"),
        params=_APGD_PARAMS,
        description="Auto-PGD on the difference-of-logits ratio (Croce and Hein 2020)",
        fixed_loss="dlr",
    ),
)
_register(
    "square",
    AttackEntry(
        run=_adapt(square, takes_norm=False),
        params={"n_queries": 1000, "p_init": 0.8},
        norms=frozenset({"linf"}),
        description="Square attack: gradient-free random search (Andriushchenko et al. 2020), linf",
        kind="gradient-free",
        fixed_loss="margin",
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
        "(tests uncertainty-based detection against an adaptive attacker; a detection-evasion "
        "attack: its robust accuracy is not a bound)",
        kind="adaptive",
    ),
)
