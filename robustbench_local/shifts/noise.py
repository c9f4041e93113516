"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper), speckle.

Each takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` and the batch's
`SampleStreams`, and returns (B, C, H, W), clipped to [0, 1] as in the published code.
Noise is drawn per pixel and per channel, from each sample's own stream.
"""

from __future__ import annotations

from torch import Tensor

from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import Table, lookup

__all__ = ["gaussian_noise", "impulse_noise", "shot_noise", "speckle_noise"]

# Hendrycks and Dietterich 2019, CIFAR-10-C table; Mu and Gilmer 2019, MNIST-C table.
GAUSSIAN_STD = {
    Table.CIFAR10_C: (0.04, 0.06, 0.08, 0.09, 0.10),
    Table.MNIST_C: (0.08, 0.12, 0.18, 0.26, 0.38),
}
SHOT_PHOTONS = {  # photons per unit intensity: fewer photons, more noise
    Table.CIFAR10_C: (500.0, 250.0, 100.0, 75.0, 50.0),
    Table.MNIST_C: (60.0, 25.0, 12.0, 5.0, 3.0),
}
IMPULSE_AMOUNT = {
    Table.CIFAR10_C: (0.01, 0.02, 0.03, 0.05, 0.07),
    Table.MNIST_C: (0.03, 0.06, 0.09, 0.17, 0.27),
}
SPECKLE_STD = {
    Table.CIFAR10_C: (0.06, 0.10, 0.12, 0.16, 0.20),
    Table.MNIST_C: (0.15, 0.20, 0.35, 0.45, 0.60),
}


def gaussian_noise(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Additive Gaussian noise: x + N(0, std^2).

    std per severity: CIFAR-10-C (0.04, 0.06, 0.08, 0.09, 0.10); MNIST-C (0.08, 0.12, 0.18,
    0.26, 0.38) (Hendrycks and Dietterich 2019; Mu and Gilmer 2019).
    """
    std, _ = lookup(GAUSSIAN_STD, table, severity)
    return (x + std * streams.normal(*x.shape[1:])).clamp(0.0, 1.0)


def shot_noise(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Photon (Poisson) noise: Poisson(x * photons) / photons.

    photons per severity: CIFAR-10-C (500, 250, 100, 75, 50); MNIST-C (60, 25, 12, 5, 3).
    """
    photons, _ = lookup(SHOT_PHOTONS, table, severity)
    return (streams.poisson(x * photons) / photons).clamp(0.0, 1.0)


def impulse_noise(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Salt and pepper: each value is, with probability amount, set to 0 or 1 (even odds).

    amount per severity: CIFAR-10-C (0.01, 0.02, 0.03, 0.05, 0.07); MNIST-C (0.03, 0.06,
    0.09, 0.17, 0.27). As scikit-image's ``random_noise(mode="s&p")`` that the published
    code calls, each channel value is hit independently.
    """
    amount, _ = lookup(IMPULSE_AMOUNT, table, severity)
    hit = streams.uniform(*x.shape[1:]) < amount
    salt = streams.uniform(*x.shape[1:]) < 0.5
    return x.masked_fill(hit & salt, 1.0).masked_fill(hit & ~salt, 0.0)


def speckle_noise(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Multiplicative Gaussian noise: x + x * N(0, std^2), so dark pixels stay dark.

    std per severity: CIFAR-10-C (0.06, 0.10, 0.12, 0.16, 0.20); MNIST-C (0.15, 0.20, 0.35,
    0.45, 0.60).
    """
    std, _ = lookup(SPECKLE_STD, table, severity)
    return (x + x * std * streams.normal(*x.shape[1:])).clamp(0.0, 1.0)
