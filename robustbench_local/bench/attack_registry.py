"""The attack registry: the attacks a benchmark config can name, with their parameters.

Each entry wraps a function of the ``attacks`` package behind one calling convention,
``run(model, x, y, eps, *, norm, generator, **params) -> x_adv``, lists the parameters a
config may set (their defaults and types read from the attack function's signature), the
attack's own check of their values, and the norms it supports, so a config is checked
completely before any work starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from attacks import apgd, fgsm, pgd, square
from attacks.apgd import validate_options as validate_apgd
from attacks.fgsm import validate_options as validate_fgsm
from attacks.pgd import validate_options as validate_pgd
from attacks.square import validate_options as validate_square
from robustbench_local.bench.adaptive import pgd_adaptive
from robustbench_local.bench.eot import apgd_eot, pgd_eot, validate_apgd_eot, validate_pgd_eot
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
        params: the parameters a config may set, with their defaults.
        types: each parameter's accepted type (bool, int, float or str; float accepts
            an int; tuple: a list of names in the config, such as pgd-eot's transforms),
            from its default, or from its annotation where the default is None.
        validate: (**params) -> None, raising TypeError or ValueError naming the parameter:
            the attack's own rules (``attacks.pgd.validate_options``, ...).
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
    types: Mapping[str, type] = field(default_factory=dict)
    validate: Callable[..., object] | None = None
    norms: frozenset[str] = frozenset({"linf", "l2"})
    description: str = ""
    kind: AttackKind = "gradient"
    iterative: bool = True
    fixed_loss: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")
        if set(self.types) != set(self.params):
            wanted, got = sorted(self.params), sorted(self.types)
            raise ValueError(f"types must name exactly the params {wanted}; got {got}")

    def loss(self, params: Mapping[str, Any]) -> str | None:
        """The loss a job with these parameters maximises ("ce", "margin", ...), if named."""
        loss = params.get("loss", self.fixed_loss)
        return loss if isinstance(loss, str) else None

    def problem(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """The first parameter the attack's own rules reject, with their message; None if
        all pass.

        Each parameter is checked alone first, so the message goes with its key; then all
        together, for rules that tie two (``early_stop=True`` with ``select="max_loss"``).
        """
        if self.validate is None or not params:
            return None
        for key, value in params.items():
            try:
                self.validate(**{key: value})
            except (TypeError, ValueError) as err:
                return key, str(err)
        try:
            self.validate(**params)
        except (TypeError, ValueError) as err:
            key = next((k for k in ("select", "early_stop") if k in params), next(iter(params)))
            return key, str(err)
        return None


ATTACKS: Registry[AttackEntry] = Registry("attack")


def _register(name: str, entry: AttackEntry) -> None:
    frozen = dataclasses.replace(
        entry,
        params=MappingProxyType(dict(entry.params)),
        types=MappingProxyType(dict(entry.types)),
    )
    ATTACKS.register(name, frozen, description=entry.description)


# The types a config value can have, bool first: a bool is also an int in Python.
_SCALARS: tuple[type, ...] = (bool, int, float, str)


def _kind(annotation: object, where: str) -> type:
    """The config type of an annotation such as ``bool | None`` or ``str | Select | None``."""
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    members = typing.get_args(annotation) if union else (annotation,)
    for kind in _SCALARS:
        if any(isinstance(m, type) and issubclass(m, kind) for m in members):
            return kind
    raise TypeError(f"{where}: no config type (bool, int, float, str) in {annotation!r}")


def _signature_params(
    functions: tuple[Callable[..., Any], ...],
    configurable: tuple[str, ...],
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, type]]:
    """The defaults and types of the ``configurable`` keyword arguments, read from the
    first of ``functions`` whose signature names each one; ``overrides`` replace defaults."""
    signatures = [inspect.signature(f, eval_str=True).parameters for f in functions]
    params: dict[str, Any] = {}
    kinds: dict[str, type] = {}
    for name in configurable:
        found = [s[name] for s in signatures if name in s]
        if not found or found[0].default is inspect.Parameter.empty:
            raise TypeError(f"no keyword argument {name!r} with a default in {functions}")
        default = overrides.get(name, found[0].default)
        params[name] = default
        where = f"{functions[0].__name__}({name})"
        kinds[name] = type(default) if default is not None else _kind(found[0].annotation, where)
    return params, kinds


def _entry(
    attack: AttackFn,
    configurable: tuple[str, ...],
    *,
    validate: Callable[..., object],
    signatures: tuple[Callable[..., Any], ...] = (),
    overrides: Mapping[str, Any] | None = None,
    fixed: Mapping[str, Any] | None = None,
    **fields: Any,
) -> AttackEntry:
    """An entry whose config parameters are ``configurable``, their defaults and types read
    from the signature of ``attack`` (then of ``signatures``, for arguments it forwards),
    except ``overrides``: defaults genuinely its own (pgd-adaptive's budget)."""
    params, kinds = _signature_params((attack, *signatures), configurable, overrides or {})
    # A loss pinned by `fixed` (apgd-dlr's "dlr") is the loss the entry maximises.
    fields.setdefault("fixed_loss", (fixed or {}).get("loss"))
    return AttackEntry(
        run=_adapt(attack, **(fixed or {})),
        params=params,
        types=kinds,
        validate=validate,
        **fields,
    )


def _adapt(attack: Callable[..., Tensor], **fixed: Any) -> AttackFn:
    """The registry's calling convention over a function of the ``attacks`` package.

    Every attack takes keyword-only ``norm`` and ``generator`` (those that cannot use them
    say so: square supports linf alone, fgsm draws nothing).

    Args:
        attack: e.g. ``attacks.pgd``.
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
        given = {**fixed, "norm": norm, "generator": generator, **params}
        return attack(model, x, y, eps, **given)

    return run


def attack_info(name: str, configured: Mapping[str, Any] | None = None) -> AttackInfo:
    """What readers of results need to know of the registered attack ``name``: its kind,
    and the parameters it runs with (its defaults, then ``configured``, the config's
    choices), so a report can say how an attack ran without importing the registry."""
    entry = ATTACKS.get(name)
    params = {**entry.params, **(configured or {})}
    # JSON-ready: a tuple default (pgd-eot's transforms) is stored as the list TOML gives.
    ready = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    return AttackInfo(name, entry.kind, entry.iterative, ready)


def attack_entry(name: str) -> AttackEntry:
    """The registered attack ``name`` (unknown names get the closest suggestion)."""
    return ATTACKS.get(name)


def attack_params(
    entry: AttackEntry, configured: Mapping[str, Any], *, stochastic: bool
) -> dict[str, Any]:
    """The parameters a job runs an attack with: defaults, then the config's choices.

    The runner knows whether the model is stochastic, so the attack need not probe it
    (``select=None``): against a stochastic model (MC dropout) a single forward pass says
    "fooled" only for those dropout masks, and the evaluation draws others; so unless the
    config says otherwise, gradient attacks return their highest-loss iterate
    (``select="max_loss"``, without early stopping) instead of the first iterate that
    looked fooled; against a deterministic one the first fooling iterate
    (``select="first_fooling"``, with early stopping), unless the config chose. An EOT
    attack (kind "eot") returns its highest-loss iterate whatever the model, for the same
    reason: its verdicts during the attack are those of single random transformations.
    """
    params = dict(entry.params)
    if "select" in params and "select" not in configured:
        if entry.kind == "eot" and not configured.get("early_stop"):
            # Over random transformations one "fooled" verdict is one draw's, like a
            # stochastic model's: keep the highest expected loss (what the attack resolves
            # to by itself with a transform).
            params["select"] = "max_loss"
        elif not stochastic:
            params["select"] = "first_fooling"
        elif not configured.get("early_stop"):
            params["select"] = "max_loss"
    params.update(configured)
    return params


_PGD = ("steps", "step_size", "restarts", "loss", "random_start", "eot_samples")
_SELECTION = ("early_stop", "select")

_register(
    "fgsm",
    _entry(
        fgsm,
        ("loss",),
        validate=validate_fgsm,
        norms=frozenset({"linf"}),
        description="fast gradient sign method: one linf step of size eps",
        iterative=False,
    ),
)
_register(
    "pgd",
    _entry(
        pgd,
        (*_PGD, *_SELECTION),
        validate=validate_pgd,
        description="projected gradient descent (Madry et al. 2018), linf or l2",
    ),
)

_APGD = ("steps", "restarts", "eot_samples", *_SELECTION, "rho", "momentum")
_register(
    "apgd-ce",
    _entry(
        apgd,
        _APGD,
        validate=validate_apgd,
        fixed={"loss": "ce"},
        description="Auto-PGD on cross-entropy (Croce and Hein 2020), linf or l2",
    ),
)
_register(
    "apgd-dlr",
    _entry(
        apgd,
        _APGD,
        validate=validate_apgd,
        fixed={"loss": "dlr"},
        description="Auto-PGD on the difference-of-logits ratio (Croce and Hein 2020)",
    ),
)
_register(
    "square",
    _entry(
        square,
        ("n_queries", "p_init"),
        validate=validate_square,
        norms=frozenset({"linf"}),
        description="Square attack: gradient-free random search (Andriushchenko et al. 2020), linf",
        kind="gradient-free",
        fixed_loss="margin",
    ),
)


_EOT = ("transforms", "severity", "eot_samples", "robust_fraction", "eval_draws")
_register(
    "pgd-eot",
    _entry(
        pgd_eot,
        (*_EOT, "steps", "step_size", "restarts", "loss", "random_start", *_SELECTION),
        validate=validate_pgd_eot,
        signatures=(pgd,),
        description="PGD over random transformations (expectation over transformation, "
        "Athalye et al. 2018): examples that survive rotations, lighting, noise",
        kind="eot",
    ),
)
_register(
    "apgd-eot",
    _entry(
        apgd_eot,
        (*_EOT, "steps", "restarts", *_SELECTION, "rho", "momentum"),
        validate=validate_apgd_eot,
        signatures=(apgd,),
        fixed={"loss": "ce"},
        description="Auto-PGD on cross-entropy over random transformations (EOT)",
        kind="eot",
    ),
)


def _validate_adaptive(**params: Any) -> None:
    """pgd's rules for the options pgd_adaptive passes on to it (its own two, weight and
    margin_cap, are any numbers >= 0)."""
    validate_pgd(**{k: v for k, v in params.items() if k not in ("weight", "margin_cap")})


_register(
    "pgd-adaptive",
    _entry(
        pgd_adaptive,
        ("steps", "step_size", "restarts", "random_start", "eot_samples", "weight", "margin_cap"),
        validate=_validate_adaptive,
        signatures=(pgd,),
        # pgd-adaptive's own default budget, not pgd's 10 steps.
        overrides={"steps": 20},
        description="PGD that fools while holding epistemic uncertainty at the clean level "
        "(tests uncertainty-based detection against an adaptive attacker; a detection-evasion "
        "attack: its robust accuracy is not a bound)",
        kind="adaptive",
    ),
)
