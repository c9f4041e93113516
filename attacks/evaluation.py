"""What an attack achieved: robust accuracy and attack success rate, by the benchmark's rules.

- Robust accuracy is over all N samples, and a clean error counts as not robust (the
  AutoAttack convention). The attacks return, per sample, an iterate taken after a step,
  so on their output this is simply the accuracy on ``x_adv``; pass the clean ``x`` as
  well to count clean errors explicitly, as the benchmark does.
- The success rate is over the initially correct samples only: of those the model
  classified correctly, the fraction the attack made it misclassify.
- Under a random input transformation (an attack with ``transform=``, expectation over
  transformation), an adversarial example counts only if it keeps fooling the model under
  fresh draws of the transformation: `fooled_under_transform` gives the fraction of draws
  that fool per sample, `survives_transform` whether that reaches a threshold, and
  `transform_success_rate` the fraction of samples for which it does.

All run the model in eval mode (each module's training flag restored after) without
gradients. A stochastic model (MC dropout) is judged by one forward pass per sample (per
draw, under a transform), so its numbers vary between calls unless its random source is
seeded.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attacks._checks import (
    check_batch,
    check_bool,
    check_fraction,
    check_logits,
    check_positive_int,
    check_transform_output,
    explain_model_errors,
    fresh_generator,
    resolve_generator,
    warn_caller,
)
from attacks._driver import Transform
from attacks.descent import eval_mode


def _check_batch_size(batch_size: object) -> int | None:
    return None if batch_size is None else check_positive_int("batch_size", batch_size)


def predictions(model: nn.Module, x: Tensor, y: Tensor, batch_size: int | None = None) -> Tensor:
    """The model's predicted classes (B,), argmax of its logits, in eval mode without grad.

    Args:
        model: returns logits (B, K).
        x: (B, ...) inputs.
        y: (B,) labels, to check the output's shape and label range against.
        batch_size: rows per forward pass; None runs the whole batch at once.

    Returns:
        (B,) int64 predictions on x's device.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_batch(x, y)
    size = _check_batch_size(batch_size) or x.shape[0]
    parts = []
    with torch.no_grad(), eval_mode(model):
        for rows, labels in zip(x.split(size), y.split(size), strict=True):
            with explain_model_errors(model, rows):
                logits = model(rows)
            check_logits(logits, labels, rows)
            parts.append(logits.argmax(dim=1))
    return torch.cat(parts)


def robust_accuracy(
    model: nn.Module,
    x_adv: Tensor,
    y: Tensor,
    *,
    x: Tensor | None = None,
    batch_size: int | None = None,
) -> float:
    """The fraction of all N samples the model still classifies correctly under attack.

    Args:
        model: returns logits (B, K); run in eval mode without gradients.
        x_adv: (N, ...) the attack's output.
        y: (N,) true labels.
        x: (N, ...) the clean inputs, optional: given, a sample counts as robust only if
            the model is right on both x and x_adv (the benchmark's rule). The attacks'
            outputs make the two agree in all but rare cases (a step that happens to
            correct a clean error).
        batch_size: rows per forward pass; None runs each tensor in one pass.

    Returns:
        Robust accuracy in [0, 1].
    """
    correct = predictions(model, x_adv, y, batch_size) == y
    if x is not None:
        _check_same_shape(x, x_adv)
        correct &= predictions(model, x, y, batch_size) == y
    return float(correct.double().mean())


def success_rate(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    *,
    batch_size: int | None = None,
) -> float:
    """The fraction of the initially correct samples that the attack made misclassified.

    Samples the model already gets wrong on x are left out: an attack cannot take credit
    for them (robust accuracy counts them as not robust instead).

    Args:
        model: returns logits (B, K); run in eval mode without gradients.
        x: (N, ...) clean inputs.
        x_adv: (N, ...) the attack's output for x.
        y: (N,) true labels.
        batch_size: rows per forward pass; None runs each tensor in one pass.

    Returns:
        The success rate in [0, 1]; NaN, with a UserWarning, when the model gets no sample
        of x right (there is nothing to attack), as the benchmark stores it.
    """
    _check_same_shape(x, x_adv)
    clean_ok = predictions(model, x, y, batch_size) == y
    adv_ok = predictions(model, x_adv, y, batch_size) == y
    if not bool(clean_ok.any()):
        warn_caller(
            f"success_rate: the model classifies none of the {y.shape[0]} clean samples "
            "correctly, so there is no success rate to measure; returning nan"
        )
        return math.nan
    return float((~adv_ok[clean_ok]).double().mean())


def _check_same_shape(x: object, x_adv: object) -> None:
    if isinstance(x, Tensor) and isinstance(x_adv, Tensor) and x.shape != x_adv.shape:
        raise ValueError(
            f"x must have the shape of x_adv {tuple(x_adv.shape)}; got {tuple(x.shape)}"
        )


# --- under a random input transformation ---------------------------------------------------


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")


def _check_transform(transform: object) -> Transform:
    """A callable; unlike the attacks' ``transform``, None is no transformation to draw."""
    if not callable(transform):
        raise TypeError(f"transform must be a callable (x, generator) -> x'; got {transform!r}")
    return transform  # type: ignore[return-value]


def _fooled_counts(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    transform: object,
    samples: object,
    generator: object,
    targeted: object,
    batch_size: object,
) -> Tensor:
    """(B,) int64: of ``samples`` draws of the transformation, how many fool the model on x.

    Draw s transforms every chunk of ``batch_size`` rows in turn, so the draws depend on the
    generator and on the chunking, nothing else.
    """
    _check_model(model)
    check_batch(x, y)
    transform = _check_transform(transform)
    samples = check_positive_int("samples", samples)
    targeted = check_bool("targeted", targeted)
    size = _check_batch_size(batch_size) or x.shape[0]
    draws = resolve_generator(generator, x) or fresh_generator(x)
    counts = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    with torch.no_grad(), eval_mode(model):
        for _ in range(samples):
            start = 0
            for rows, labels in zip(x.split(size), y.split(size), strict=True):
                x_t = transform(rows, draws)
                check_transform_output(x_t, rows)
                with explain_model_errors(model, x_t):
                    logits = model(x_t)
                check_logits(logits, labels, x_t)
                prediction = logits.argmax(dim=1)
                fooled = prediction == labels if targeted else prediction != labels
                counts[start : start + len(rows)] += fooled
                start += len(rows)
    return counts


def fooled_under_transform(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    transform: Transform,
    *,
    samples: int = 32,
    generator: torch.Generator | int | None = None,
    targeted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Per sample, the fraction of random transformations under which x fools the model.

    Args:
        model: returns logits (B, K); run in eval mode without gradients.
        x: (B, ...) inputs, typically an attack's output x_adv.
        y: (B,) true labels, or target labels when ``targeted``.
        transform: (x (B, C, H, W), generator) -> x' (B, C, H, W), drawing its randomness
            from the generator it is given (see :data:`attacks.Transform`).
        samples: how many transformations to draw (int >= 1); each is one forward pass
            over the batch.
        generator: where the draws come from: a torch.Generator, an int seed (a fresh
            generator on x's device) or None (a nondeterministic seed). Pass another seed
            than the attack's to judge x on draws the attack did not see (the attack's own
            transform generator is derived from its seed, so even the same seed gives other
            draws here, but a distinct seed says so).
        targeted: fooled means predicting y, instead of anything but y.
        batch_size: rows per forward pass; None runs the whole batch at once. The draws
            follow the chunks, so a result reproduces for the same seed and batch_size.

    Returns:
        (B,) float64 in [0, 1], on x's device: for each sample, the fraction of the
        ``samples`` transformations t for which model(t(x)) is fooled.
    """
    counts = _fooled_counts(model, x, y, transform, samples, generator, targeted, batch_size)
    return counts.double() / samples


def least_count(fraction: float, samples: int) -> int:
    """The fewest of ``samples`` draws that make at least ``fraction`` of them (>= 1).

    ceil(fraction * samples), except where the product lands a rounding error above an
    integer (0.7 * 10 is 7.000000000000001 in floats): that integer is the answer.
    """
    product = fraction * samples
    nearest = round(product)
    if math.isclose(product, nearest, rel_tol=1e-9, abs_tol=0.0):
        return max(nearest, 1)
    return max(math.ceil(product), 1)


def survives_transform(
    model: nn.Module,
    x_adv: Tensor,
    y: Tensor,
    transform: Transform,
    *,
    samples: int = 32,
    fraction: float = 0.9,
    generator: torch.Generator | int | None = None,
    targeted: bool = False,
    batch_size: int | None = None,
) -> Tensor:
    """Per sample, whether x_adv fools the model on at least ``fraction`` of ``samples``
    freshly drawn transformations: an adversarial example robust to the transformation.

    Args:
        model, y, transform, samples, generator, targeted, batch_size: as in
            :func:`fooled_under_transform`.
        x_adv: (B, ...) the attack's output.
        fraction: in (0, 1]: the least share of the draws that must fool the model; with
            ``samples`` draws that is ceil(fraction * samples) of them (29 of 32 for 0.9).

    Returns:
        (B,) bool on x_adv's device.
    """
    fraction = check_fraction("fraction", fraction, allow_zero=False)
    counts = _fooled_counts(model, x_adv, y, transform, samples, generator, targeted, batch_size)
    return counts >= least_count(fraction, samples)


def transform_success_rate(
    model: nn.Module,
    x_adv: Tensor,
    y: Tensor,
    transform: Transform,
    *,
    samples: int = 32,
    fraction: float = 0.9,
    generator: torch.Generator | int | None = None,
    targeted: bool = False,
    batch_size: int | None = None,
) -> float:
    """The fraction of the B samples whose x_adv survives the transformation: fools the
    model on at least ``fraction`` of ``samples`` fresh draws (see `survives_transform`).

    Unlike :func:`success_rate` it is over all B rows given: to leave out the clean errors,
    pass only the rows the model gets right on the clean x.

    Args:
        as in :func:`survives_transform`.

    Returns:
        The rate in [0, 1].
    """
    survived = survives_transform(
        model,
        x_adv,
        y,
        transform,
        samples=samples,
        fraction=fraction,
        generator=generator,
        targeted=targeted,
        batch_size=batch_size,
    )
    return float(survived.double().mean())
