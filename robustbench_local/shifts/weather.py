"""Weather corruptions: fog, from a plasma fractal (diamond-square) per sample.

Takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` and the batch's
`SampleStreams`, and returns (B, C, H, W) in [0, 1]. (ImageNet-C's snow and frost need image
files or ImageMagick and are left out.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import Table, lookup

__all__ = ["fog", "plasma_fractal"]

# (thickness, roughness decay): Hendrycks and Dietterich 2019 (CIFAR-10-C); Mu and Gilmer 2019
# (MNIST-C). A smaller decay keeps more fine detail in the fog.
FOG_THICKNESS_DECAY = {
    Table.CIFAR10_C: ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)),
    Table.MNIST_C: ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
}
FIRST_WIBBLE = 100.0  # the published fractal's first-level noise scale


def plasma_fractal(size: int, decay: float, streams: SampleStreams) -> Tensor:
    """A random height map per sample by the diamond-square algorithm, in [0, 1].

    Starting from one corner, each level sets the centres of the current squares (then the
    edge midpoints, the "diamonds") to the mean of their four neighbours plus uniform noise
    of amplitude wibble^2; wibble is divided by decay at each level. The map wraps around
    (a torus), as the published version's ``np.roll``.

    Args:
        size: the map's side, a power of two.
        decay: how fast the noise shrinks with the scale; larger is smoother.
        streams: the per-sample random streams; the map is on their device.

    Returns:
        (B, size, size), each map rescaled to [0, 1].
    """
    batch = len(streams)
    steps, step = [], size
    while step >= 2:
        steps.append(step)
        step //= 2
    # All of a sample's draws at once, consumed level by level in a fixed order.
    counts = [3 * (size // s) ** 2 for s in steps]
    noise = streams.uniform(sum(counts), low=-1.0, high=1.0)
    plasma = torch.zeros(batch, size, size, dtype=streams.dtype, device=streams.device)
    wibble, used = FIRST_WIBBLE, 0
    for step, count in zip(steps, counts, strict=True):
        half, n = step // 2, size // step
        level = noise[:, used : used + count].reshape(batch, 3, n, n) * wibble**2
        used += count
        corners = plasma[:, 0::step, 0::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        plasma[:, half::step, half::step] = square / 4 + level[:, 0]
        centres = plasma[:, half::step, half::step]
        # Midpoints of the top edges: centres above and below, corners left and right.
        around = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        plasma[:, 0::step, half::step] = around / 4 + level[:, 1]
        # Midpoints of the left edges: centres left and right, corners above and below.
        around = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        plasma[:, half::step, 0::step] = around / 4 + level[:, 2]
        wibble /= decay
    plasma = plasma - plasma.amin(dim=(1, 2), keepdim=True)
    return plasma / plasma.amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(plasma.dtype).tiny)


def fog(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Fog: x + thickness * plasma, rescaled by max(x) / (max(x) + thickness).

    (thickness, decay) per severity: CIFAR-10-C ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2),
    (1.5, 1.75)); MNIST-C ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)). The map's
    side is the smallest power of two that covers the image, as CIFAR-10-C's 32 for 32x32
    (MNIST-C crops 28x28 out of a 256 map; so large a map per sample costs too much memory
    in a batch, so its fog here varies over the image's own scale). A black image (max 0)
    stays black, as in the published formula.
    """
    (thickness, decay), _ = lookup(FOG_THICKNESS_DECAY, table, severity)
    height, width = x.shape[-2], x.shape[-1]
    size = 2
    while size < max(height, width):
        size *= 2
    plasma = plasma_fractal(size, decay, streams)[:, None, :height, :width]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x + thickness * plasma) * peak / (peak + thickness)).clamp(0.0, 1.0)
