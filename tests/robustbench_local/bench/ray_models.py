"""A user model for the executor tests: honest predictions, but any gradient through it
raises, so its attack tasks (eps > 0) and its diagnostics fail on every attempt while its
eps = 0 jobs complete. A config names it as ``factory =
"tests.robustbench_local.bench.ray_models:no_gradients"``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NoGradients(nn.Module):
    """A linear classifier of 8x8 digits that refuses to be differentiated."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("this model refuses gradients")
        return self.linear(x.flatten(1))


def no_gradients() -> NoGradients:
    return NoGradients()


def write_checkpoint(path: str) -> None:
    """Weights for `no_gradients` (fixed by a seed)."""
    torch.manual_seed(0)
    torch.save(NoGradients().state_dict(), path)
