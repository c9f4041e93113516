"""Argument checks shared by the heads, `decompose` and the metrics.

Every check raises `ValueError` (bad value or shape) or `TypeError` (bad type) with a message that
names the argument, the value received and what was expected. One mistake is only suspected, not
certain, where a model's outputs are read: outputs that look like probabilities instead of
logits; the wrappers warn about it (`warn_if_probabilities`), and `TemperatureScaler.fit`, which
sees a whole held-out set, rejects it (`reject_probabilities`).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Absolute tolerance on "sums to 1" and on "lies in [0, 1]" for probabilities. Loose enough for
#: float32 softmax outputs averaged over samples, tight enough to catch logits passed by mistake.
PROB_ATOL = 1e-3

#: The hint every "these look like probabilities" warning and error ends with: what to change.
LOGITS_HINT = (
    "the model must return logits (B, K), the scores before softmax: remove its final "
    "softmax (nn.Softmax / F.softmax / .softmax(dim=-1)); a model that can only return "
    "probabilities p can return p.clamp_min(1e-12).log() instead, which are valid logits"
)


def as_tensor(value: Any, name: str) -> Tensor:
    """Return `value` as a tensor; accept tensors, numpy arrays, lists and tuples.

    Args:
        value: the argument to convert.
        name: the argument's name, for the error message.

    Returns:
        A tensor (the same object when `value` already is one).
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(value))
    raise TypeError(
        f"{name} must be a torch.Tensor (or a numpy array / list); got {type(value).__name__}"
    )


def _row_label(index: tuple[int, ...]) -> str:
    return str(index[0]) if len(index) == 1 else str(index)


def check_probs(probs: Any, name: str = "probs", *, samples_only: bool = False) -> Tensor:
    """Check that `probs` holds probability vectors over the last dim.

    Args:
        probs: (B, K) probabilities or (S, B, K) samples of them (only (S, B, K) when
            `samples_only`).
        name: the argument's name, for the error message.
        samples_only: require the (S, B, K) form.

    Returns:
        `probs` as a floating tensor, unchanged.
    """
    probs = as_tensor(probs, name)
    if not torch.is_floating_point(probs):
        raise TypeError(
            f"{name} must be a floating-point tensor of probabilities; got {probs.dtype}"
        )
    expected = "(S, B, K)" if samples_only else "(B, K) or (S, B, K)"
    if probs.ndim != 3 and (samples_only or probs.ndim != 2):
        hint = " (add a leading sample dim with probs[None])" if samples_only else ""
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(probs.shape)}{hint}")
    if probs.numel() == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(probs.shape)}")
    # Checks run in at least float32: half-precision sums would trip the tolerance by themselves.
    checked = probs.detach().float() if probs.dtype in (torch.float16, torch.bfloat16) else probs
    checked = checked.detach()
    finite = torch.isfinite(checked)
    if not bool(finite.all()):
        index = tuple(int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"{name} must be finite; got {float(checked[index])} at index {index}")
    low, high = checked.min(), checked.max()
    if float(low) < -PROB_ATOL or float(high) > 1 + PROB_ATOL:
        bad = float(low) if float(low) < -PROB_ATOL else float(high)
        raise ValueError(
            f"{name} must lie in [0, 1] (tolerance {PROB_ATOL:g}); got a value of {bad:.6g} "
            "(logits passed instead of probabilities?)"
        )
    sums = checked.sum(dim=-1)
    off = (sums - 1).abs() > PROB_ATOL
    if bool(off.any()):
        index = tuple(int(i) for i in off.nonzero()[0])
        raise ValueError(
            f"{name} must sum to 1 over the last dim (tolerance {PROB_ATOL:g}); "
            f"row {_row_label(index)} sums to {float(sums[index]):.6g}"
        )
    return probs


def check_labels(y: Any, num_classes: int, batch: int, name: str = "y") -> Tensor:
    """Check class labels against the number of classes and the batch size.

    Args:
        y: (B,) integer class indices.
        num_classes: K; every label must lie in [0, K).
        batch: B, the batch size of the matching prediction.
        name: the argument's name, for the error message.

    Returns:
        `y` as a tensor, unchanged.
    """
    y = as_tensor(y, name)
    if torch.is_floating_point(y) or torch.is_complex(y) or y.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class indices; got {y.dtype}")
    if y.ndim != 1 or y.shape[0] != batch:
        raise ValueError(
            f"{name} must have shape ({batch},) to match the prediction's batch size; "
            f"got shape {tuple(y.shape)}"
        )
    if y.numel() > 0:
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}); got {bad}")
    return y


def check_n_bins(n_bins: Any) -> int:
    """Check a number of bins: an int >= 1.

    Args:
        n_bins: the value received.

    Returns:
        `n_bins` as an int.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"n_bins must be an int >= 1; got {n_bins!r} ({type(n_bins).__name__})")
    if n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1; got {n_bins}")
    return int(n_bins)


def check_positive_int(value: Any, name: str) -> int:
    """Check an int >= 1 (a number of samples, a chunk size).

    Args:
        value: the value received.
        name: the argument's name, for the error message.

    Returns:
        `value` as an int.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= 1; got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value}")
    return int(value)


def check_binary(values: Any, name: str, length: int) -> Tensor:
    """Check a (N,) vector of booleans (or 0/1 integers) and return it as bool.

    Args:
        values: (N,) bool, or integers in {0, 1}.
        name: the argument's name, for the error message.
        length: N, the length it must have.

    Returns:
        (N,) bool tensor.
    """
    values = as_tensor(values, name)
    if values.ndim != 1 or values.shape[0] != length:
        raise ValueError(
            f"{name} must have shape ({length},) to match the scores; got shape "
            f"{tuple(values.shape)}"
        )
    if values.dtype == torch.bool:
        return values
    if torch.is_floating_point(values) or torch.is_complex(values):
        raise TypeError(f"{name} must be a bool (or 0/1 integer) tensor; got {values.dtype}")
    outside = (values != 0) & (values != 1)
    if bool(outside.any()):
        bad = int(values[outside][0])
        raise ValueError(f"{name} must hold only 0 and 1 (or be bool); got {bad}")
    return values.bool()


def check_scores(scores: Any, name: str = "scores") -> Tensor:
    """Check a (N,) vector of real scores without NaN (infinities are allowed: they still rank).

    Args:
        scores: (N,) real numbers, N >= 1.
        name: the argument's name, for the error message.

    Returns:
        `scores` as a floating tensor.
    """
    scores = as_tensor(scores, name)
    if torch.is_complex(scores) or scores.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued tensor; got {scores.dtype}")
    if scores.ndim != 1 or scores.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N,) with N >= 1; got shape {tuple(scores.shape)}"
        )
    if not torch.is_floating_point(scores):
        scores = scores.double()
    nan = torch.isnan(scores)
    if bool(nan.any()):
        raise ValueError(f"{name} must not hold NaN; got NaN at index {int(nan.nonzero()[0, 0])}")
    return scores


def check_confidence(confidence: Any, name: str = "confidence") -> Tensor:
    """Check a (N,) vector of top-label confidences in [0, 1].

    Args:
        confidence: (N,) floats in [0, 1], N >= 1.
        name: the argument's name, for the error message.

    Returns:
        `confidence` as a float64 tensor.
    """
    confidence = as_tensor(confidence, name)
    if not torch.is_floating_point(confidence):
        raise TypeError(f"{name} must be a floating-point tensor; got {confidence.dtype}")
    if confidence.ndim != 1 or confidence.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N,) with N >= 1; got shape {tuple(confidence.shape)}"
        )
    confidence = confidence.detach().double()
    bad = ~((confidence >= -PROB_ATOL) & (confidence <= 1 + PROB_ATOL))  # also catches NaN
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{name} must lie in [0, 1]; got {float(confidence[index])} at index {index}"
        )
    return confidence


def looks_like_probabilities(outputs: Tensor) -> bool:
    """Whether every row of `outputs` is non-negative and sums to 1: softmax outputs, not logits.

    Logits from a trained network have both signs and no fixed sum; all rows of a batch passing
    both tests by chance is not a practical risk for K >= 2. Log-probabilities (<= 0) pass as
    logits, rightly: log_softmax leaves them unchanged.

    Args:
        outputs: (..., K) model outputs, K over the last dim.

    Returns:
        True when the rows look like probability vectors (K >= 2, at least one row).
    """
    if not torch.is_floating_point(outputs) or outputs.ndim < 1 or outputs.numel() == 0:
        return False
    classes = outputs.shape[-1]
    if classes < 2:  # one "class" sums to itself: nothing to tell apart
        return False
    checked = outputs.detach().float()
    # A softmax in reduced precision (bf16 autocast) sums to 1 only within a few of its eps per
    # class; float32 and float64 sums land well inside PROB_ATOL.
    tolerance = max(PROB_ATOL, classes * torch.finfo(outputs.dtype).eps)
    sums_to_one = (checked.sum(dim=-1) - 1.0).abs().max() <= tolerance
    verdict = (checked.min() >= 0.0) & sums_to_one
    try:
        # One host sync for both tests: this runs on every forward of the wrappers.
        return bool(verdict)
    except RuntimeError:
        # Inside torch.func.vmap a tensor's value cannot steer Python: the check is skipped
        # there rather than breaking a wrapper that worked under vmap before it.
        return False


_PACKAGE = str(Path(__file__).resolve().parent)
_TORCH = str(Path(torch.__file__).resolve().parent)


def _caller_stacklevel() -> int:
    """The `stacklevel` that points a warning at the first frame outside this package and torch.

    A student then sees the line of their own notebook or script that called the wrapper (or
    the attack that ran it), not a line deep inside it; and Python's once-per-location filter
    shows the warning once per calling line, not once per forward pass.
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None:
        filename = str(Path(frame.f_code.co_filename).resolve())
        if not (filename.startswith(_PACKAGE) or filename.startswith(_TORCH)):
            return level
        frame, level = frame.f_back, level + 1
    return level


def warn_if_probabilities(outputs: Tensor, name: str) -> None:
    """Warn (UserWarning) when a model's outputs look like probabilities instead of logits.

    Softmax applied on top of probabilities flattens every prediction towards uniform: the
    uncertainty comes out far too high and the calibration numbers are meaningless, with no
    error anywhere. A warning, not an error: on a small batch the test could in principle be
    fooled by real logits, and the computation itself is still defined.

    Args:
        outputs: (..., K) what the model returned.
        name: what produced them, for the message (e.g. "model(x)", "members[0](x)").
    """
    if looks_like_probabilities(outputs):
        warn_probabilities(name)


def warn_probabilities(name: str) -> None:
    """The warning of `warn_if_probabilities`, for a caller that has already run the test.

    Args:
        name: what produced the outputs, for the message.
    """
    warnings.warn(
        f"{name} looks like probabilities, not logits (every row is non-negative and sums "
        f"to 1), so softmax would be applied twice; {LOGITS_HINT}",
        UserWarning,
        stacklevel=_caller_stacklevel(),
    )


def reject_probabilities(outputs: Tensor, name: str) -> None:
    """Raise ValueError when `outputs`, documented as logits, look like probabilities.

    Args:
        outputs: (..., K) the argument received.
        name: the argument's name, for the message.
    """
    if looks_like_probabilities(outputs):
        raise ValueError(
            f"{name} must be logits; got values that look like probabilities (every row is "
            f"non-negative and sums to 1); {LOGITS_HINT} (or pass probs.log())"
        )
