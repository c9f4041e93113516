"""Models whose forward is an honest CNN but whose input gradient is useless, for the
gradient-masking tests; a config names them as ``factory = "tests.robustbench_local.
masked_models:build"`` with ``factory_kwargs = { kind = "..." }``.

Each kind breaks the gradient another way, so that no single quirk of one construction is
what the checks catch:

- "fixed": the backward returns one fixed random pattern, whatever the input and loss
  (non-zero, finite, deterministic, useless: PGD marches to one fixed corner);
- "negated": the true gradient, negated (PGD descends the loss);
- "rotated": the true gradient times a fixed random orthogonal matrix (same norm, wrong
  direction);
- "hashed": a random pattern seeded by a hash of the input itself (deterministic per input,
  a random walk across steps);
- "quantised": rounds inputs to five grey levels (gradient zero almost everywhere);
- "saturated": honest gradients, logits scaled by 1e4 (softmax exactly one-hot in float32,
  so the cross-entropy gradient is exactly zero; the margin's is not);
- "plain": the CNN alone (the control).

All share one architecture, ``Sequential(front, digits-cnn, back)`` with parameter-free
front and back, so one checkpoint of trained digits-cnn weights serves every kind.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor, nn

from robustbench_local.zoo.models import create_model

KINDS = ("fixed", "negated", "rotated", "hashed", "quantised", "saturated", "plain")
_SEED = 1234


class _FixedPattern(torch.autograd.Function):
    """Identity forward; backward: one fixed standard-normal pattern (per input shape)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        generator = torch.Generator().manual_seed(_SEED)
        pattern = torch.randn(grad.shape[1:], generator=generator)
        return pattern.expand_as(grad).to(grad).clone()


class _Negated(torch.autograd.Function):
    """Identity forward; backward: the true gradient, negated."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return -grad


def _rotation(dim: int) -> Tensor:
    """A fixed random orthogonal (dim, dim) matrix (QR of a seeded Gaussian)."""
    generator = torch.Generator().manual_seed(_SEED)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q


class _Rotated(torch.autograd.Function):
    """Identity forward; backward: the true gradient (B, D) times a fixed rotation."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        flat = grad.flatten(1).double()
        return (flat @ _rotation(flat.shape[1]).T).to(grad).view_as(grad)


class _Hashed(torch.autograd.Function):
    """Identity forward; backward: per sample, a pattern seeded by the hash of its input."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        patterns = []
        for sample in x.detach().cpu().float():
            digest = hashlib.sha256(sample.numpy().tobytes()).digest()
            generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
            patterns.append(torch.randn(sample.shape, generator=generator))
        return torch.stack(patterns).to(grad)


_FUNCTIONS = {"fixed": _FixedPattern, "negated": _Negated, "rotated": _Rotated, "hashed": _Hashed}


class Front(nn.Module):
    """What the input goes through before the CNN (parameter-free)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "quantised":
            return torch.round(x * 4) / 4
        function = _FUNCTIONS.get(self.kind)
        return x if function is None else function.apply(x)


class Back(nn.Module):
    """What the logits go through after the CNN (parameter-free)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, logits: Tensor) -> Tensor:
        return logits * 1e4 if self.kind == "saturated" else logits


def build(kind: str = "plain") -> nn.Module:
    """A digits-cnn wrapped as ``kind`` (see the module docstring), untrained."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return nn.Sequential(Front(kind), create_model("digits-cnn"), Back(kind))


def wrap(trained: nn.Module, kind: str) -> nn.Module:
    """A trained digits-cnn wrapped as ``kind``."""
    model = build(kind)
    model[1].load_state_dict(trained.state_dict())
    return model.eval()
