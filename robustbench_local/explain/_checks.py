"""Argument checks for the explain functions: every message names the argument, the value
received and what was expected."""

from __future__ import annotations

import torch
from torch import Tensor, nn

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def check_model(model: object) -> nn.Module:
    """An nn.Module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return model


def check_images(x: object, name: str = "x") -> Tensor:
    """A finite floating (B, C, H, W) batch with B >= 1."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images; got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (B, C, H, W) with B >= 1; got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite values")
    return x


def check_target(target: object, x: Tensor) -> Tensor:
    """Integer class indices (B,) on x's device, returned as int64 (captum gathers with it).

    The upper end of the range, K, is known only once the model has run: see `check_output`.
    """
    if not isinstance(target, Tensor):
        raise TypeError(
            f"target must be a torch.Tensor of class indices (B,); got {type(target).__name__}"
        )
    if target.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"target must hold integer class indices (int64); got dtype {target.dtype}")
    if target.shape != x.shape[:1]:
        raise ValueError(
            f"target must have shape ({x.shape[0]},) to match x; got {tuple(target.shape)}"
        )
    if target.device != x.device:
        raise ValueError(f"target must be on x's device {x.device}; got {target.device}")
    if target.numel() and int(target.min()) < 0:
        raise ValueError(f"target must hold class indices >= 0; got min {int(target.min())}")
    return target.long()


def check_output(output: object, rows: int, target: Tensor) -> None:
    """The model must return (rows, K) logits, and every target must lie in [0, K)."""
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != rows:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"model output must be logits of shape ({rows}, K); got {shape}")
    classes = output.shape[1]
    if target.numel() and int(target.max()) >= classes:
        raise ValueError(
            f"target must hold class indices in [0, {classes}) for a model with {classes} "
            f"classes; got max {int(target.max())}"
        )


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """An int >= minimum (k, n, n_steps)."""
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r} ({kind})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value}")
    return value


def check_matrix(name: str, value: object) -> Tensor:
    """A finite floating (N, D) tensor with N, D >= 1."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, D); got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {value.dtype}")
    if value.dim() != 2 or value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1; got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite values")
    return value
