"""Photometric corruptions: contrast, brightness and saturation, as the published formulas.

Each takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` and the batch's
`SampleStreams` (unused: these are deterministic), and returns (B, C, H, W) in [0, 1].

torchvision's ``adjust_contrast``, ``adjust_brightness`` and ``adjust_saturation`` define
other operations (a blend with the gray image's mean, a multiplication, a blend with the
gray image) than the published corruptions (a per-channel mean, and additions in HSV
space), so the formulas are written here; the HSV ones in closed form, without a round trip
through HSV: with hue and saturation fixed every channel scales with the value V = max, and
with hue and value fixed every channel's distance from V scales with the saturation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import Table, lookup

__all__ = ["brightness", "contrast", "saturate"]

# Hendrycks and Dietterich 2019 (CIFAR-10-C); Mu and Gilmer 2019 (MNIST-C).
CONTRAST_FACTOR = {
    Table.CIFAR10_C: (0.75, 0.5, 0.4, 0.3, 0.15),
    Table.MNIST_C: (0.4, 0.3, 0.2, 0.1, 0.05),
}
BRIGHTNESS_SHIFT = {
    Table.CIFAR10_C: (0.05, 0.1, 0.15, 0.2, 0.3),
    Table.MNIST_C: (0.1, 0.2, 0.3, 0.4, 0.5),
}
SATURATION_SCALE_SHIFT = {  # S -> clip(S * scale + shift)
    Table.CIFAR10_C: ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)),
    Table.MNIST_C: ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)),
}


def contrast(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Lower contrast: (x - m) * factor + m, with m each channel's mean over the image.

    factor per severity: CIFAR-10-C (0.75, 0.5, 0.4, 0.3, 0.15); MNIST-C (0.4, 0.3, 0.2,
    0.1, 0.05) (Hendrycks and Dietterich 2019; Mu and Gilmer 2019).
    """
    factor, _ = lookup(CONTRAST_FACTOR, table, severity)
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * factor + means).clamp(0.0, 1.0)


def brightness(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Brighter: the HSV value V = max over channels becomes min(V + shift, 1), hue and
    saturation kept, so each channel is multiplied by V' / V (a black pixel becomes gray V').

    On a gray image this is min(x + shift, 1), which is what MNIST-C computes through
    gray -> RGB -> HSV -> RGB -> gray. shift per severity: CIFAR-10-C (0.05, 0.1, 0.15, 0.2,
    0.3); MNIST-C (0.1, 0.2, 0.3, 0.4, 0.5).
    """
    shift, _ = lookup(BRIGHTNESS_SHIFT, table, severity)
    value = x.amax(dim=1, keepdim=True)
    brighter = (value + shift).clamp(0.0, 1.0)
    ratio = brighter / value.clamp_min(torch.finfo(x.dtype).tiny)
    return torch.where(value > 0, x * ratio, brighter).clamp(0.0, 1.0)


def saturate(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Change saturation: the HSV saturation S becomes clip(S * scale + shift, 0, 1), hue and
    value kept. Colour images only (the registry rejects gray ones before this runs).

    (scale, shift) per severity: CIFAR-10-C ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1),
    (2.5, 0.2)); MNIST-C ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)). Severities 1
    and 2 wash the colours out, 3 to 5 exaggerate them. A gray pixel (S = 0) has hue 0
    (red) in scikit-image's HSV, which the published code uses, so a positive shift tints
    it red; kept here for fidelity.
    """
    (scale, shift), _ = lookup(SATURATION_SCALE_SHIFT, table, severity)
    value = x.amax(dim=1, keepdim=True)
    spread = value - x.amin(dim=1, keepdim=True)  # V * S
    tiny = torch.finfo(x.dtype).tiny
    saturation = spread / value.clamp_min(tiny)
    new_saturation = (saturation * scale + shift).clamp(0.0, 1.0)
    # Coloured pixels: each channel's distance below V scales with S' / S.
    coloured = value - (value - x) * new_saturation / saturation.clamp_min(tiny)
    # Gray pixels: hue 0 puts red at V and green and blue at V (1 - S').
    red_hue = torch.tensor([0.0, 1.0, 1.0], dtype=x.dtype, device=x.device)[:, None, None]
    gray = value - value * new_saturation * red_hue
    return torch.where(spread > 0, coloured, gray).clamp(0.0, 1.0)
