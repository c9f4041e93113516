"""Threat models: what each norm contributes to the one descent loop.

A norm supplies three small pure functions and nothing else: a random start inside
its ball, the ascent direction for a gradient, and the projection back onto the ball.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
from torch import Tensor

# Keeps l2 normalisation finite for an all-zero gradient or perturbation.
_TINY = 1e-12


class Norm(str, Enum):
    """The perturbation norms the attacks support."""

    LINF = "linf"
    L2 = "l2"


@dataclass(frozen=True)
class Geometry:
    """The three operations a norm contributes to the descent loop.

    Attributes:
        random_start: (like (B, ...), eps, generator) -> a perturbation drawn
            uniformly from the eps-ball, shape and dtype of ``like``.
        ascent_direction: gradient (B, ...) -> the steepest-ascent unit step for the norm.
        project: (delta (B, ...), eps) -> delta projected onto the eps-ball.
    """

    random_start: Callable[[Tensor, float, torch.Generator | None], Tensor]
    ascent_direction: Callable[[Tensor], Tensor]
    project: Callable[[Tensor, float], Tensor]


def _per_sample_norm(t: Tensor) -> Tensor:
    """L2 norm of each sample, shaped (B, 1, ..., 1) to broadcast against t."""
    flat = t.flatten(1).norm(p=2, dim=1)
    return flat.view(-1, *([1] * (t.dim() - 1)))


def _draw(like: Tensor, generator: torch.Generator | None, sampler: str) -> Tensor:
    """Random numbers shaped like ``like``, drawn on the generator's device for reproducibility."""
    device = generator.device if generator is not None else like.device
    draw = torch.rand if sampler == "uniform" else torch.randn
    out = draw(like.shape, generator=generator, dtype=like.dtype, device=device)
    return out.to(like.device)


def linf_random_start(like: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """Uniform in the linf ball: each coordinate uniform in [-eps, eps]."""
    return (2.0 * _draw(like, generator, "uniform") - 1.0) * eps


def linf_ascent_direction(grad: Tensor) -> Tensor:
    """Steepest ascent under linf: the sign of the gradient."""
    return grad.sign()


def linf_project(delta: Tensor, eps: float) -> Tensor:
    """Clip each coordinate to [-eps, eps]."""
    return delta.clamp(-eps, eps)


def l2_random_start(like: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """Uniform in the l2 ball: a Gaussian direction and radius eps * U^(1/d)."""
    direction = _draw(like, generator, "normal")
    direction = direction / _per_sample_norm(direction).clamp_min(_TINY)
    dims = like[0].numel()
    radius = _draw(like.new_empty(like.shape[0]), generator, "uniform") ** (1.0 / dims)
    return direction * (eps * radius).view(-1, *([1] * (like.dim() - 1)))


def l2_ascent_direction(grad: Tensor) -> Tensor:
    """Steepest ascent under l2: the gradient scaled to unit length per sample."""
    return grad / _per_sample_norm(grad).clamp_min(_TINY)


def l2_project(delta: Tensor, eps: float) -> Tensor:
    """Scale each sample's perturbation back onto the l2 ball when it lies outside."""
    factor = (eps / _per_sample_norm(delta).clamp_min(_TINY)).clamp(max=1.0)
    return delta * factor


GEOMETRIES: dict[Norm, Geometry] = {
    Norm.LINF: Geometry(linf_random_start, linf_ascent_direction, linf_project),
    Norm.L2: Geometry(l2_random_start, l2_ascent_direction, l2_project),
}
