"""Argument validation for the attacks: every message names the argument, the value and
what was expected, so a notebook user sees at once what to fix.

Besides errors, this module holds the checks for the mistakes that give silently wrong
numbers rather than an exception (a model ending in softmax, an eps in 0..255 units,
targets the model already predicts): those warn, naming the likely mistake and the fix,
and run on outputs the attack computes anyway, so they cost no extra forward pass.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from itertools import chain
from typing import TypeVar

import torch
from torch import Tensor, nn

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


_ONE_SAMPLE_HINT = (
    "if x is a single sample, add the batch dimension: x[None] (or x.unsqueeze(0)), "
    "with y of shape (1,)"
)


def check_batch(x: object, y: object) -> None:
    """x: a finite floating tensor (B, ...); y: integer labels (B,) on x's device.

    Raises:
        TypeError: x or y not a tensor, x not floating, y not integer.
        ValueError: shapes that do not match (with the ``x[None]`` hint where x looks like
            one sample without its batch dimension), another device, NaN or inf in x.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor of labels; got {type(y).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor; got dtype {x.dtype}")
    if x.dim() < 2 or x.shape[0] == 0:
        hint = f"; {_ONE_SAMPLE_HINT}" if x.dim() == 1 else ""
        raise ValueError(f"x must have shape (B, ...) with B >= 1; got {tuple(x.shape)}{hint}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"y must hold integer class labels; got dtype {y.dtype}")
    if y.shape != x.shape[:1]:
        # One label for a batch of several: x is most likely one image (C, H, W) whose
        # first axis was taken for the batch. Saying so beats a message about y alone.
        one_label = y.dim() == 0 or (y.numel() == 1 and x.shape[0] != 1)
        hint = f"; x of shape {tuple(x.shape)} looks like one sample: {_ONE_SAMPLE_HINT}"
        raise ValueError(
            f"y must have shape ({x.shape[0]},) to match x; got {tuple(y.shape)}"
            + (hint if one_label else "")
        )
    if y.device != x.device:
        raise ValueError(f"y must be on x's device {x.device}; got {y.device}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"x must be finite; got {bad} NaN or infinite values")


def check_inputs(x: object, y: object, bounds: tuple[float, float]) -> None:
    """x: floating (B, ...) within bounds, finite; y: integer labels (B,) (see `check_batch`)."""
    check_batch(x, y)
    low, high = bounds
    x_min, x_max = float(x.min()), float(x.max())  # type: ignore[union-attr]
    if x_min < low - BOUNDS_TOLERANCE or x_max > high + BOUNDS_TOLERANCE:
        raise ValueError(
            f"x must lie within bounds={bounds} (pixel space; normalisation belongs inside "
            f"the model); got values in [{x_min:.6g}, {x_max:.6g}]"
        )


_WRAP_HINT = (
    "wrap the model in an nn.Module whose forward returns the logits tensor (B, K), "
    "e.g. `return self.model(x){access}`"
)


def check_logits(logits: object, y: Tensor, x: Tensor | None = None) -> None:
    """The model's output must be logits (B, K) with every label in [0, K).

    Args:
        logits: what the model returned.
        y: (B,) labels.
        x: (B, ...) the input, if known: a 3-d x with an output of the wrong batch size
            gets the ``x[None]`` hint.

    Raises:
        TypeError: a tuple, list, dict or an object with ``.logits`` (Hugging Face style),
            with a hint to wrap the model.
        ValueError: a tensor not (B, K), or labels outside [0, K).
    """
    if not isinstance(logits, Tensor):
        raise TypeError(_not_a_tensor(logits))
    if logits.dim() != 2 or logits.shape[0] != y.shape[0]:
        hint = ""
        if x is not None and x.dim() == 3:
            hint = f"; x has shape {tuple(x.shape)}: {_ONE_SAMPLE_HINT}"
        raise ValueError(
            f"model output must be logits of shape (B, K) = ({y.shape[0]}, K); "
            f"got {tuple(logits.shape)}{hint}"
        )
    num_classes = logits.shape[1]
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"y must hold labels in [0, {num_classes}) for a model with {num_classes} classes; "
            f"got values in [{int(y.min())}, {int(y.max())}]"
        )


def _not_a_tensor(output: object) -> str:
    """The message for a model output that is not a tensor, with the wrapper that fixes it."""
    kind = type(output).__name__
    if isinstance(getattr(output, "logits", None), Tensor):  # Hugging Face ModelOutput
        access = ".logits"
        got = f"a {kind} with a .logits tensor"
    elif isinstance(output, Mapping):
        keys = list(output)
        access = "['logits']" if "logits" in output else f"[{keys[0]!r}]" if keys else ""
        got = f"a {kind} with keys {keys[:5]}"
    elif isinstance(output, (tuple, list)):
        access = "[0]"
        got = f"a {kind} of {len(output)} items"
    else:
        access = ""
        got = f"a {kind}"
    wrap = _WRAP_HINT.format(access=access or "  # the logits")
    return f"model output must be a logits tensor of shape (B, K); got {got}: {wrap}"


def model_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's first floating parameter or buffer; None if it has none."""
    for tensor in chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


@contextmanager
def explain_model_errors(model: nn.Module, x: Tensor) -> Iterator[None]:
    """Re-raise a model's RuntimeError with the likely cause when the input explains it.

    - x's dtype differs from the model's (float x into a half model): a TypeError naming
      both dtypes and the two conversions that fix it.
    - x is 3-d (C, H, W), most likely one image without its batch dimension: a ValueError
      with the ``x[None]`` hint.

    Anything else propagates unchanged. Only a failing call is looked at, so a model that
    casts its input itself (autocast inside) is never second-guessed.
    """
    try:
        yield
    except RuntimeError as err:
        weights = model_dtype(model)
        if weights is not None and weights != x.dtype:
            raise TypeError(
                f"x has dtype {x.dtype} but the model's weights are {weights}, and the model "
                f"failed on it ({_first_line(err)}); convert one to the other: "
                f"x.to({weights}) or model.to({x.dtype}) (float32 is safer for attacks: "
                "half-precision input gradients underflow)"
            ) from err
        if x.dim() == 3:
            raise ValueError(
                f"the model failed on x of shape {tuple(x.shape)} ({_first_line(err)}); "
                f"{_ONE_SAMPLE_HINT}"
            ) from err
        raise


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# --- the silent mistakes: warnings on values the attack computes anyway -----------------------

_ATTACKS_DIR = os.path.dirname(os.path.abspath(__file__))


def warn_caller(message: str) -> None:
    """A UserWarning attributed to the first frame outside the attacks package (the user's
    line), whichever attack and helper raised it."""
    # stacklevel 1 is this function, 2 its caller (frame 1), and so on.
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == (
        _ATTACKS_DIR
    ):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, UserWarning, stacklevel=level)


def probability_tolerance(dtype: torch.dtype) -> float:
    """How far from 1 a row of probabilities may sum in ``dtype`` (softmax rounding)."""
    return 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-4


def looks_like_probabilities(output: Tensor) -> bool:
    """Whether every row of ``output`` (B, K), K >= 2, is non-negative and sums to 1.

    Genuine logits all but never do (a row of logits would need every entry >= 0 and a
    sum of exactly 1), so this flags a model that ends in softmax.
    """
    if output.dim() != 2 or output.shape[1] < 2 or output.shape[0] == 0:
        return False
    values = output.detach()
    if not bool((values >= 0).all()):
        return False
    sums = values.double().sum(dim=1)
    return bool(((sums - 1.0).abs() <= probability_tolerance(values.dtype)).all())


def warn_if_probabilities(output: Tensor) -> None:
    """Warn when a model's output (B, K) looks like probabilities instead of logits."""
    if looks_like_probabilities(output):
        warn_caller(
            "the model's outputs look like probabilities (every row is >= 0 and sums to 1), "
            "but the attacks expect logits: through a final softmax the loss saturates and "
            "its gradient vanishes, so the attack looks weaker than it is. Drop the final "
            "softmax (or use log_softmax); if you only have the probabilities, return "
            "torch.log(probs), a valid logit vector wherever no probability is 0"
        )


def warn_if_eps_covers_bounds(
    eps: float, norm: str, bounds: tuple[float, float], sample_size: int
) -> None:
    """Warn when the eps-ball contains every input within bounds: almost surely a unit
    mistake (eps=8 meant as 8/255), and any attack then fools any model.

    linf: eps >= high - low. l2: eps >= (high - low) * sqrt(D), the box's diagonal, D the
    number of values per sample.
    """
    width = bounds[1] - bounds[0]
    reach = width if norm == "linf" else width * math.sqrt(sample_size)
    if eps < reach:
        return
    covers = "covers the whole input range" if norm == "linf" else "reaches every input in"
    message = (
        f"eps={eps:g} ({norm}) {covers} bounds={bounds}, so every model is fooled; eps is in "
        "the units of the inputs (pixel space)"
    )
    if 1.0 <= eps <= 255.0 and width >= 1.0:  # a count of 0..255 pixel levels, it seems
        meant = eps / 255.0 * width
        scale = "" if width == 1.0 else f" * {width:g}"
        message += f": did you mean {eps:g}/255{scale} = {meant:.4g}?"
    warn_caller(message)


def warn_if_targets_predicted(logits: Tensor, y: Tensor) -> None:
    """Warn when a targeted attack starts where the model already predicts most targets.

    Args:
        logits: (B, K) the model's scores at the attack's start.
        y: (B,) the target labels.
    """
    hits = int((logits.detach().argmax(dim=1) == y).sum())
    if 2 * hits > y.shape[0]:
        warn_caller(
            f"targeted=True, but the model already predicts the target for {hits} of "
            f"{y.shape[0]} rows at the attack's start, which a targeted attack counts as "
            "successes without changing anything. With targeted=True, y holds the target "
            "labels: did you pass the true labels or the model's predictions? For an "
            "untargeted attack, leave targeted=False"
        )


def resolve_generator(generator: object, like: Tensor) -> torch.Generator | None:
    """A generator as the attacks take it: None, a torch.Generator, or an int seed.

    An int becomes a fresh torch.Generator on ``like``'s device seeded with it, so
    ``generator=0`` reproduces a run on the same device (CPU and CUDA generators draw
    different numbers from the same seed).

    Raises:
        TypeError: anything else (a bool included).
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        seeded = torch.Generator(device=like.device)
        try:
            return seeded.manual_seed(generator)
        except (RuntimeError, ValueError) as err:  # torch's overflow message names no argument
            raise ValueError(
                f"generator must be a torch.Generator, None or an int seed that fits in 64 "
                f"bits; got {generator}"
            ) from err
    raise TypeError(f"generator must be a torch.Generator, an int seed or None; got {generator!r}")


def check_callback(callback: object) -> None:
    """None or a callable taking one argument (the step's `attacks.StepInfo`)."""
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be a callable (StepInfo) -> None, or None; got {callback!r}"
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


def check_transform(transform: object) -> Callable[[Tensor, torch.Generator], Tensor] | None:
    """None, or a callable (x (B, ...), generator) -> x' (B, ...): the attacks' ``transform``."""
    if transform is not None and not callable(transform):
        raise TypeError(
            f"transform must be a callable (x, generator) -> x', or None; got {transform!r}"
        )
    return transform  # type: ignore[return-value]


def check_transform_output(output: object, x: Tensor) -> None:
    """What a transform returned for x (B, ...): a tensor of x's shape, and, when x needs a
    gradient, one with a gradient path back to x.

    Without that path the attack's gradient would be None or zero and the attack a silent
    no-op, so it is an error rather than a weak result.

    Raises:
        TypeError: the output is not a tensor.
        ValueError: another shape, or no gradient path to x.
    """
    if not isinstance(output, Tensor):
        raise TypeError(
            f"transform must return a torch.Tensor of x's shape {tuple(x.shape)}; "
            f"got a {type(output).__name__}"
        )
    if output.shape != x.shape:
        raise ValueError(
            f"transform must return a tensor of x's shape {tuple(x.shape)}; "
            f"got {tuple(output.shape)}"
        )
    if x.requires_grad and torch.is_grad_enabled() and not output.requires_grad:
        raise ValueError(
            "transform breaks the gradient: its output has no gradient path back to its input "
            "(a .detach(), a round trip through numpy or PIL, or an integer cast inside it?), "
            "so an attack through it would follow no gradient and change nothing; write it "
            "with differentiable torch operations on x"
        )


def fresh_generator(like: Tensor) -> torch.Generator:
    """A generator on ``like``'s device with a nondeterministic seed (for generator=None)."""
    generator = torch.Generator(device=like.device)
    generator.seed()
    return generator
