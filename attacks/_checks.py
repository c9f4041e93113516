"""Argument validation for the attacks: every message names the argument, the value and
what was expected, so a notebook user sees at once what to fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import TypeVar

import torch
from torch import Tensor

from attacks.losses import LOSSES, Loss, LossFn

E = TypeVar("E", bound=Enum)

# Inputs a hair outside the bounds come from float round-off in the caller's
# preprocessing; anything beyond this is a real mistake (e.g. unnormalised 0..255 pixels).
BOUNDS_TOLERANCE = 1e-6


def parse_option(enum_cls: type[E], value: object, argument: str) -> E:
    """``enum_cls(value)``, or a ValueError that lists the accepted values."""
    try:
        return enum_cls(value)
    except ValueError:
        accepted = ", ".join(repr(member.value) for member in enum_cls)
        raise ValueError(f"{argument} must be one of {accepted}; got {value!r}") from None


def check_non_negative(argument: str, value: object) -> float:
    """A finite real number >= 0 (eps, step sizes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a real number; got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument} must be a finite number >= 0; got {value!r}")
    return float(value)


def check_fraction(argument: str, value: object, *, allow_zero: bool = True) -> float:
    """A number in [0, 1] (or (0, 1] without ``allow_zero``): rho, momentum, p_init."""
    value = check_non_negative(argument, value)
    if value > 1.0 or (value == 0.0 and not allow_zero):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{argument} must be a number in {interval}; got {value!r}")
    return value


def check_positive_int(argument: str, value: object) -> int:
    """An int >= 1 (steps, restarts, EOT samples)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int >= 1; got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{argument} must be an int >= 1; got {value}")
    return value


def check_bounds(bounds: object) -> tuple[float, float]:
    """A pair (low, high) of finite numbers with low < high."""
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"bounds must be a pair (low, high); got {bounds!r}")
    low, high = bounds
    for value in (low, high):
        is_real = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_real or not math.isfinite(value):
            raise ValueError(f"bounds must hold two finite numbers; got {bounds!r}")
    if not low < high:
        raise ValueError(f"bounds must satisfy low < high; got {bounds!r}")
    return float(low), float(high)


def check_inputs(x: object, y: object, bounds: tuple[float, float]) -> None:
    """x: floating (B, ...) within bounds, finite; y: integer labels (B,)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor of labels; got {type(y).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (B, ...) with B >= 1; got {tuple(x.shape)}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"y must hold integer class labels; got dtype {y.dtype}")
    if y.shape != x.shape[:1]:
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x; got {tuple(y.shape)}")
    if y.device != x.device:
        raise ValueError(f"y must be on x's device {x.device}; got {y.device}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"x must be finite; got {bad} NaN or infinite values")
    low, high = bounds
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < low - BOUNDS_TOLERANCE or x_max > high + BOUNDS_TOLERANCE:
        raise ValueError(
            f"x must lie within bounds={bounds} (pixel space; normalisation belongs inside "
            f"the model); got values in [{x_min:.6g}, {x_max:.6g}]"
        )


def check_logits(logits: object, y: Tensor) -> None:
    """The model's output must be logits (B, K) with every label in [0, K)."""
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != y.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"model output must be logits of shape (B, K) = ({y.shape[0]}, K); got {shape}"
        )
    num_classes = logits.shape[1]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"y must hold labels in [0, {num_classes}) for a model with {num_classes} classes; "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )


def resolve_loss(loss: object) -> LossFn:
    """A built-in loss by name, or a callable (logits, y) -> (B,) passed through."""
    if callable(loss):
        return loss  # type: ignore[return-value]
    if not isinstance(loss, (str, Loss)):
        raise TypeError(f"loss must be a name or a callable (logits, y) -> (B,); got {loss!r}")
    return LOSSES[parse_option(Loss, loss, "loss")]


def check_loss_output(value: object, batch: int, loss: Callable) -> None:
    """A loss must give one value per sample."""
    if not isinstance(value, Tensor) or value.shape != (batch,):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        name = getattr(loss, "__name__", repr(loss))
        raise ValueError(
            f"loss {name} must return a per-sample tensor of shape ({batch},); got {shape}"
        )


def check_options(
    checks: Mapping[str, Callable[[object], object]], options: Mapping[str, object], attack: str
) -> dict[str, object]:
    """Each option checked (and normalised) by its own rule; an unknown name is a TypeError.

    The attacks' ``validate_options`` are built on this, so a benchmark config can check
    its attack parameters with the attack's own rules before any work starts.
    """
    unknown = [name for name in options if name not in checks]
    if unknown:
        raise TypeError(
            f"{attack} has no option {unknown[0]!r}; its options are {', '.join(sorted(checks))}"
        )
    return {name: checks[name](value) for name, value in options.items()}


def check_bool(argument: str, value: object) -> bool:
    """True or False (random_start, targeted)."""
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be True or False; got {value!r}")
    return value
