"""From the public attack arguments to a run of the shared descent loop.

Validation, the objective closure and the model's eval mode live here once, so each
public attack is a few lines that choose a norm, a step rule and a budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from attacks._checks import (
    check_bool,
    check_bounds,
    check_callback,
    check_inputs,
    check_logits,
    check_loss_output,
    check_non_negative,
    check_options,
    check_positive_int,
    check_transform,
    check_transform_output,
    explain_model_errors,
    fresh_generator,
    parse_option,
    resolve_generator,
    resolve_loss,
    warn_if_eps_covers_bounds,
    warn_if_probabilities,
    warn_if_targets_predicted,
)
from attacks.descent import (
    Callback,
    Evaluate,
    Feasible,
    LoopOptions,
    Select,
    StepRule,
    descend,
    eval_mode,
)
from attacks.norms import GEOMETRIES, Norm
from attacks.stochastic import is_stochastic

# objective(model, x (B, ...), y (B,)) -> (value to maximise (B,), logits (B, K))
Objective = Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor]]

#: transform(x (B, C, H, W), generator) -> x' (B, C, H, W): a differentiable random input
#: transformation (a random rotation, shift, added noise), drawn from the generator it is
#: given. The gradient attacks average over its draws (expectation over transformation,
#: Athalye et al. 2018); :func:`attacks.transform_success_rate` measures whether an
#: adversarial example survives fresh draws.
Transform = Callable[[Tensor, torch.Generator], Tensor]

# Keeps the transformations' seed apart from any other use of the attack generator's state.
_TRANSFORM_SALT = b"attacks.eot"


def transform_generator(generator: torch.Generator | None, like: Tensor) -> torch.Generator:
    """The generator an attack's transformations draw from, on ``like``'s device.

    It is a generator of its own, so the attack's stream (the random starts) is drawn exactly
    as without a transform. Its seed is a hash of ``generator``'s current state, which is
    read, not drawn from: the same seed or generator in gives the same transformations, and a
    generator reused for the next batch (its state moved on by that batch's random starts)
    gives fresh ones. None: a nondeterministic seed.
    """
    if generator is None:
        return fresh_generator(like)
    state = generator.get_state().numpy().tobytes()
    digest = hashlib.blake2b(state, digest_size=8, person=_TRANSFORM_SALT).digest()
    seed = int.from_bytes(digest, "little") >> 1  # 63 bits: any torch accepts it
    return torch.Generator(device=like.device).manual_seed(seed)


def make_evaluate(
    model: nn.Module,
    loss: object,
    targeted: bool,
    objective: Objective | None = None,
    transform: Transform | None = None,
    draws: torch.Generator | None = None,
) -> Evaluate:
    """What the loop maximises: the loss on the model's logits, or a whole ``objective`` of
    the model and input (an adaptive attack's); negated for a targeted attack.

    With a ``transform`` every call first draws a fresh transformation from ``draws`` (the
    transform's own generator, see `transform_generator`; a nondeterministic one if None)
    and feeds the model (or the objective) transform(x, draws) instead of x: the loop's EOT
    passes are then passes over transformations, and the input gradient flows through the
    transform to x.

    The first call, which sees the whole batch at the attack's start, also checks the
    transform's output (x's shape, a gradient path to x) and the model's output (type and
    shape, labels in range), and warns on the silent mistakes visible there: outputs that
    are probabilities, and targets the model already predicts. A model error on that call
    gets the likely cause (see `explain_model_errors`).
    """
    if objective is not None and not callable(objective):
        raise TypeError(
            f"objective must be a callable (model, x, y) -> (values, logits); got {objective!r}"
        )
    transform = check_transform(transform)
    loss_fn = resolve_loss(loss)
    sign = -1.0 if targeted else 1.0
    checked = False

    def transformed(x: Tensor) -> Tensor:
        nonlocal draws
        if transform is None:
            return x
        if draws is None:
            draws = fresh_generator(x)
        x_t = transform(x, draws)
        if not checked:
            check_transform_output(x_t, x)
        return x_t

    def forward(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if objective is None:
            logits = model(x)
            if not checked:  # the first call sees the whole batch; later ones see subsets
                check_logits(logits, y, x)
            return loss_fn(logits, y), logits
        value, logits = objective(model, x, y)
        if not checked:
            check_logits(logits, y, x)
        return value, logits

    def evaluate(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal checked
        x = transformed(x)
        if checked:
            value, logits = forward(x, y)
            return sign * value, logits
        with explain_model_errors(model, x):
            value, logits = forward(x, y)
        check_loss_output(value, x.shape[0], objective or loss_fn)
        warn_if_probabilities(logits)
        if targeted:
            warn_if_targets_predicted(logits, y)
        checked = True
        return sign * value, logits

    return evaluate


def resolve_selection(
    model: nn.Module,
    x: Tensor,
    early_stop: object,
    select: object,
    single_candidate: bool = False,
    transformed: bool = False,
) -> tuple[bool, Select]:
    """The ``early_stop`` and ``select`` an attack runs with, None meaning automatic.

    - ``select`` given: ``early_stop`` defaults to ``select == "first_fooling"`` (stopping
      at the first fooling iterate then returns the same iterate for less work).
    - ``early_stop=True`` alone: ``select="first_fooling"``, the only one it is exact for.
    - A single candidate (one step, one restart: FGSM) has nothing to select or stop, so
      the model is not looked at.
    - ``transformed`` (the attack has a random input transform): as for a stochastic
      model, ``select="max_loss"`` and no early stop: a "fooled" verdict under one draw of
      the transformation may not hold under the others. The model is not probed: whatever
      it is, the objective the attack sees is random.
    - otherwise by the model (:func:`attacks.stochastic.is_stochastic`): a stochastic model
      gets ``select="max_loss"`` and no early stop, since one noisy "fooled" verdict may not
      hold at evaluation; a deterministic one ``select="first_fooling"`` with early stop.

    Raises:
        TypeError: ``early_stop`` not a bool or None.
        ValueError: an unknown ``select``, or ``early_stop=True`` with ``select="max_loss"``.
    """
    early_stop, select = check_selection(early_stop, select)
    if select is not None:
        if early_stop is None:
            early_stop = select is Select.FIRST_FOOLING
    elif early_stop or single_candidate:
        select = Select.FIRST_FOOLING
    else:
        stochastic = transformed or is_stochastic(model, x)
        select = Select.MAX_LOSS if stochastic else Select.FIRST_FOOLING
        if early_stop is None:
            early_stop = not stochastic
    if early_stop is None:  # a single candidate: there is no later iterate to skip
        early_stop = False
    return early_stop, select


def check_selection(early_stop: object, select: object) -> tuple[bool | None, Select | None]:
    """``early_stop`` (True, False or None) and ``select`` (a `Select` or None), checked
    without the model: the types, the name of ``select``, and that ``early_stop=True``
    does not come with ``select="max_loss"``.

    Raises:
        TypeError: ``early_stop`` not a bool or None.
        ValueError: an unknown ``select``, or ``early_stop=True`` with ``select="max_loss"``.
    """
    if early_stop is not None and not isinstance(early_stop, bool):
        raise TypeError(f"early_stop must be True, False or None; got {early_stop!r}")
    if select is not None:
        select = parse_option(Select, select, "select")
    if early_stop and select is Select.MAX_LOSS:
        raise ValueError(
            "early_stop=True stops at the first fooling iterate, which select='max_loss' "
            "does not return; use one or the other"
        )
    return early_stop, select  # type: ignore[return-value]


def _check_early_stop(value: object) -> bool | None:
    return check_selection(value, None)[0]


def _check_select(value: object) -> Select | None:
    return check_selection(None, value)[1]


def _check_loss(value: object) -> object:
    resolve_loss(value)
    return value


#: The rules of the options every gradient attack passes to the loop (see `check_loop_options`).
LOOP_CHECKS: dict[str, Callable[[object], object]] = {
    "norm": lambda value: parse_option(Norm, value, "norm"),
    "steps": lambda value: check_positive_int("steps", value),
    "restarts": lambda value: check_positive_int("restarts", value),
    "eot_samples": lambda value: check_positive_int("eot_samples", value),
    "random_start": lambda value: check_bool("random_start", value),
    "targeted": lambda value: check_bool("targeted", value),
    "loss": _check_loss,
    "early_stop": _check_early_stop,
    "select": _check_select,
    "bounds": check_bounds,
    "transform": check_transform,
}


def check_loop_options(
    checks: Mapping[str, Callable[[object], object]], options: Mapping[str, object], attack: str
) -> dict[str, object]:
    """``options`` checked one by one with ``checks``, then early_stop against select."""
    checked = check_options(checks, options, attack)
    if "early_stop" in options or "select" in options:
        check_selection(options.get("early_stop"), options.get("select"))
    return checked


def gradient_attack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    norm: str | Norm,
    steps: int,
    make_rule: Callable[[Feasible], StepRule],
    random_start: bool,
    restarts: int,
    targeted: bool,
    loss: object,
    bounds: tuple[float, float],
    eot_samples: int,
    early_stop: bool | None,
    generator: torch.Generator | int | None,
    select: str | Select | None = None,
    objective: Objective | None = None,
    callback: Callback | None = None,
    transform: Transform | None = None,
) -> Tensor:
    """Validate the arguments, then run ``descend`` with the model in eval mode.

    Args and shapes as in :func:`attacks.pgd`; ``make_rule`` builds the step rule for a
    feasible set (called once per restart). ``early_stop`` and ``select`` left None are
    chosen by :func:`resolve_selection`; an int ``generator`` is a seed (see
    `resolve_generator`), and a ``transform`` draws from a generator of its own derived
    from it (see `transform_generator`). Warns when eps covers the whole input range (a
    unit mistake), and on the first forward pass as `make_evaluate` says. Returns the
    adversarial batch, x's shape, dtype and device, detached.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    eps = check_non_negative("eps", eps)
    norm = parse_option(Norm, norm, "norm")
    geometry = GEOMETRIES[norm]
    steps = check_positive_int("steps", steps)
    restarts = check_positive_int("restarts", restarts)
    eot_samples = check_positive_int("eot_samples", eot_samples)
    bounds = check_bounds(bounds)
    check_inputs(x, y, bounds)
    generator = resolve_generator(generator, x)
    check_callback(callback)
    transform = check_transform(transform)
    warn_if_eps_covers_bounds(eps, norm.value, bounds, x[0].numel())
    draws = None if transform is None else transform_generator(generator, x)
    evaluate = make_evaluate(model, loss, targeted, objective, transform, draws)
    single_candidate = steps == 1 and restarts == 1
    early_stop, select = resolve_selection(
        model, x, early_stop, select, single_candidate, transformed=transform is not None
    )
    feasible = Feasible(geometry, eps, bounds)
    options = LoopOptions(
        steps=steps,
        random_start=random_start,
        restarts=restarts,
        targeted=targeted,
        eot_samples=eot_samples,
        early_stop=early_stop,
        select=select,
    )

    # The caller may sit in no_grad or inference mode (an evaluation loop); the attack
    # still needs input gradients, and an inference tensor cannot enter autograd.
    with torch.inference_mode(False), torch.enable_grad(), eval_mode(model):
        x_work = x.detach().clone()
        y_work = y.detach().clone().long()
        x_adv = descend(
            evaluate,
            x_work,
            y_work,
            feasible=feasible,
            make_rule=lambda: make_rule(feasible),
            options=options,
            generator=generator,
            callback=callback,
        )
    return x_adv.detach()
