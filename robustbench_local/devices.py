"""Where a run computes: device resolution and mixed precision."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Autocast", "resolve_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """ "auto" -> cuda when available else cpu; "cuda" without a GPU is an error.

    Args:
        device: "auto", "cpu", "cuda" or "cuda:N".
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string; got {type(device).__name__}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but torch sees no CUDA device "
                f"(torch {torch.__version__}); use --device cpu or auto"
            )
        return torch.device(device)
    raise ValueError(
        f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N); got {device!r}"
    )


class Autocast(nn.Module):
    """Runs a model under bfloat16 autocast and hands back float32 outputs.

    Attacks and metrics then see ordinary float32 logits and probabilities, while the
    matrix work runs in reduced precision on the GPU.

    Args:
        model: a classifier (B, ...) -> logits (B, K), or a wrapper with ``sample_probs``.
        device_type: "cuda" (or "cpu", where bfloat16 autocast is slow but valid).
    """

    def __init__(self, model: nn.Module, device_type: str = "cuda") -> None:
        super().__init__()
        self.model, self.device_type = model, device_type

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x).float()

    def sample_probs(self, x: Tensor) -> Tensor:
        """(S, B, K) float32 probabilities of the wrapped model."""
        inner = getattr(self.model, "sample_probs", None)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            probs = inner(x) if callable(inner) else F.softmax(self.model(x).float(), dim=-1)[None]
        return probs.float()

    def manual_seed(self, seed: int) -> Autocast:
        """Reseed the wrapped model's randomness, where it has any (MC dropout)."""
        reseed = getattr(self.model, "manual_seed", None)
        if callable(reseed):
            reseed(seed)
        return self
