"""Where a run computes: device resolution and mixed precision."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DEVICE_CHOICES", "Autocast", "check_amp", "resolve_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """The one device parser of the benchmark, the trainer and the CLI.

    Args:
        device: "auto" (cuda when available, else cpu), "cpu", "cuda", "cuda:N", or a
            torch.device.

    Returns:
        the torch.device; asking for CUDA where torch sees none is a ValueError.
    """
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device; got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N); got {device!r}"
        )
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} asks for CUDA, but torch {torch.__version__} sees no CUDA "
            f"device; use --device cpu or auto"
        )
    return parsed


def check_amp(amp: object, device: torch.device) -> bool:
    """The one AMP check: bfloat16 autocast, on a CUDA device that supports it.

    bf16 keeps fp32's exponent range, so input gradients of the attacks cannot underflow and
    no loss scaling is needed; fp16 would need a GradScaler in every attack as well.

    Returns:
        amp, validated.
    """
    if not isinstance(amp, bool):
        raise TypeError(f"amp must be a bool; got {amp!r}")
    if amp and device.type != "cuda":
        raise ValueError(
            f"amp=True needs a CUDA device (--amp; autocast is never used on CPU); "
            f"got device={device}"
        )
    if amp and not torch.cuda.is_bf16_supported():
        raise ValueError(f"amp=True uses bfloat16, which device {device} does not support")
    return amp


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
