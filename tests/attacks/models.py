"""Small models for the attack tests: a tiny digits CNN and exact linear models."""

from __future__ import annotations

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """A tiny CNN for 1x8x8 digits; trains to ~97% test accuracy in a second or two."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def linear_model(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """logits = flatten(x) @ weight.T + bias, with the given (K, D) weight and (K,) bias."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0]))
    model = model.to(weight.dtype)
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.copy_(bias)
    return model
