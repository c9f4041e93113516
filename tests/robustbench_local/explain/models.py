"""Small models whose attributions are known in advance, for the explain tests."""

from __future__ import annotations

import torch
from torch import nn


class OnePixel(nn.Module):
    """Logits that depend on the single pixel x[:, channel, row, col] only:
    logit_k = weight_k * sigmoid(4 * (p - 0.5)) + bias_k. Every other pixel has gradient
    exactly 0, so every attribution belongs to that pixel."""

    def __init__(self, channel: int, row: int, col: int, classes: int = 3) -> None:
        super().__init__()
        self.where = (channel, row, col)
        weight = torch.linspace(1.0, -1.5, classes, dtype=torch.float64)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(classes, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, row, col = self.where
        pixel = x[:, channel, row, col]
        return torch.sigmoid(4.0 * (pixel[:, None] - 0.5)) * self.weight + self.bias


class SmoothNet(nn.Module):
    """A small CNN with smooth activations (tanh, average pooling), so integrated gradients
    converge to machine precision; optional dropout for MC dropout."""

    def __init__(self, channels: int = 1, classes: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(6 * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.pool(torch.tanh(self.conv(x))).flatten(1)
        return self.head(self.drop(hidden))


def smooth_net(seed: int, dropout: float = 0.0, channels: int = 1) -> nn.Module:
    """A seeded float64 SmoothNet for 8x8 inputs."""
    torch.manual_seed(seed)
    return SmoothNet(channels=channels, dropout=dropout).double()


class ConvGap(nn.Module):
    """1x1 conv, global average pooling, linear head: no nonlinearity after the conv, so the
    gradient of logit t with respect to channel c of the conv output is W[t, c] / (H * W)
    everywhere and GradCAM is CAM: relu(sum_c W[t, c] * A_c) / (H * W)."""

    def __init__(self, channels: int = 2, maps: int = 3, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, maps, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(maps, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.conv(x)).flatten(1))


def no_conv_net(classes: int = 4) -> nn.Module:
    """A multilayer perceptron on 1x8x8 inputs: nothing for GradCAM to hook."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, classes))
