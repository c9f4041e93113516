"""Blur corruptions: Gaussian, defocus (disk), motion and zoom blur, and the filters they share.

Each corruption takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` and
the batch's `SampleStreams`, and returns (B, C, H, W). Radii and sigmas are the published
ones in pixels of the table's images (32 or 28 wide), scaled to x's size (`pixel_scale`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
import torchvision.transforms.v2.functional as tvf
from torch import Tensor

from robustbench_local.shifts.sampling import pixel_grid, sample_at
from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import Table, lookup, pixel_scale

__all__ = [
    "defocus_blur",
    "filter2d",
    "gaussian_blur",
    "motion_blur",
    "smooth",
    "zoom_blur",
]

# Hendrycks and Dietterich 2019 (CIFAR-10-C); Mu and Gilmer 2019 (MNIST-C).
GAUSSIAN_SIGMA = {
    Table.CIFAR10_C: (0.4, 0.6, 0.7, 0.8, 1.0),
    Table.MNIST_C: (1.0, 2.0, 3.0, 4.0, 6.0),
}
DEFOCUS_RADIUS_ALIAS = {  # (disk radius, sigma of the anti-aliasing blur of the disk)
    Table.CIFAR10_C: ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)),
    Table.MNIST_C: ((3.0, 0.1), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5), (10.0, 0.5)),
}
MOTION_RADIUS_SIGMA = {  # ImageMagick's motion blur (radius, sigma), in pixels
    Table.CIFAR10_C: ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5)),
    Table.MNIST_C: ((10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0)),
}
ZOOM_MAX_STEP = {  # zoom factors 1, 1 + step, ..., up to max (numpy's arange(1, max+, step))
    Table.CIFAR10_C: ((1.05, 0.01), (1.10, 0.01), (1.15, 0.01), (1.20, 0.01), (1.25, 0.01)),
    Table.MNIST_C: ((1.10, 0.01), (1.15, 0.01), (1.20, 0.02), (1.24, 0.02), (1.30, 0.03)),
}
MOTION_ANGLE_DEG = 45.0  # the blur direction is uniform in [-45, 45] degrees, per sample


def _pad_mode(x: Tensor, pad: int) -> str:
    # Reflection (OpenCV's and torchvision's default border) needs pad < side; a kernel
    # wider than a tiny image falls back to repeating the edge pixels.
    return "reflect" if pad < min(x.shape[-2], x.shape[-1]) else "replicate"


def filter2d(x: Tensor, kernel: Tensor) -> Tensor:
    """Correlate every channel of x with one odd-sized (k, k) kernel, reflecting at the borders.

    Args:
        x: (B, C, H, W).
        kernel: (k, k) with k odd, on x's device and dtype.

    Returns:
        (B, C, H, W).
    """
    channels, pad = x.shape[1], kernel.shape[-1] // 2
    padded = nnf.pad(x, (pad, pad, pad, pad), mode=_pad_mode(x, pad))
    weight = kernel.expand(channels, 1, *kernel.shape)
    return nnf.conv2d(padded, weight, groups=channels)


def smooth(x: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """Gaussian smoothing with torchvision, the kernel cut at truncate sigmas (scikit-image's
    default is 4), and never wider than reflection padding allows.

    Args:
        x: (B, C, H, W).
        sigma: the standard deviation in pixels; 0 or less returns x.
        truncate: the kernel's half-width in sigmas.

    Returns:
        (B, C, H, W).
    """
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(truncate * sigma))
    radius = min(radius, min(x.shape[-2], x.shape[-1]) - 1)
    if radius < 1:  # a one-pixel side: nothing to blur across
        return x
    size = 2 * radius + 1
    return tvf.gaussian_blur(x, kernel_size=[size, size], sigma=[sigma, sigma])


def gaussian_blur(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Gaussian blur.

    sigma per severity, in the table's pixels: CIFAR-10-C (0.4, 0.6, 0.7, 0.8, 1.0);
    MNIST-C (1, 2, 3, 4, 6) (Hendrycks and Dietterich 2019; Mu and Gilmer 2019).
    """
    sigma, source = lookup(GAUSSIAN_SIGMA, table, severity)
    return smooth(x, sigma * pixel_scale(x, source))


DISK_SUPERSAMPLING = 9  # sub-pixel samples per side when measuring a disk's coverage


def disk_kernel(radius: float, alias_sigma: float, dtype: torch.dtype) -> Tensor:
    """A lens's point spread: a normalised disk of the given radius, its edge softened by a
    small Gaussian (3x3 up to radius 8, 5x5 beyond, as in the published code).

    Each pixel's weight is the fraction of it the disk covers (measured on a 9x9 sub-pixel
    grid), where the published kernel tests pixel centres only: scaled to a small image a
    radius falls below one pixel, and a centres-only disk would then be a single pixel,
    no blur at all, while the covered area still spills into the neighbours.

    Returns:
        (k, k) with k odd, summing to 1.
    """
    soft = 1 if radius <= 8 else 2
    half = math.ceil(radius) + soft  # room for the softening to spread
    n = DISK_SUPERSAMPLING
    offsets = (torch.arange(n, dtype=dtype) + 0.5) / n - 0.5  # sub-pixel centres
    fine = (torch.arange(-half, half + 1, dtype=dtype)[:, None] + offsets).flatten()
    rows, cols = torch.meshgrid(fine, fine, indexing="ij")
    inside = (rows**2 + cols**2 <= radius**2).to(dtype)
    disk = nnf.avg_pool2d(inside[None, None], kernel_size=n)[0, 0]
    taps = torch.arange(-soft, soft + 1, dtype=dtype)
    gauss = torch.exp(-(taps**2) / (2 * alias_sigma**2))
    gauss = torch.outer(gauss, gauss)
    kernel = nnf.conv2d(disk[None, None], gauss[None, None], padding=soft)[0, 0]
    # Drop the all-zero outer rings, so that the padding is no wider than the blur.
    used = int((kernel.abs().amax(dim=0) > 0).nonzero().min())
    kernel = kernel[used : kernel.shape[0] - used, used : kernel.shape[1] - used]
    return kernel / kernel.sum()


def defocus_blur(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Defocus blur: convolution with an anti-aliased disk.

    (radius, anti-alias sigma) per severity, in the table's pixels: CIFAR-10-C ((0.3, 0.4),
    (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)); MNIST-C ((3, 0.1), (4, 0.5), (6, 0.5),
    (8, 0.5), (10, 0.5)). torchvision has no disk filter, hence the hand-made kernel.
    """
    (radius, alias), source = lookup(DEFOCUS_RADIUS_ALIAS, table, severity)
    scale = pixel_scale(x, source)
    kernel = disk_kernel(radius * scale, alias * scale, x.dtype).to(x.device)
    return filter2d(x, kernel)


def motion_blur(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Motion blur along a random direction per sample, as ImageMagick's ``-motion-blur``.

    (radius, sigma) per severity, in the table's pixels: CIFAR-10-C ((6, 1), (6, 1.5),
    (6, 2), (8, 2), (9, 2.5)); MNIST-C ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)); the
    angle is uniform in [-45, 45] degrees. Like ImageMagick the kernel is one-sided: taps
    i = 0 .. 2 radius at i pixels along the direction, weighted exp(-i^2 / (2 sigma^2)).
    Scaled to x's size the taps fall between pixels, so each is a bilinear sample.
    """
    (radius, sigma), source = lookup(MOTION_RADIUS_SIGMA, table, severity)
    step = pixel_scale(x, source)
    taps = torch.arange(2 * radius + 1, dtype=x.dtype, device=x.device)
    weights = torch.exp(-(taps**2) / (2 * sigma**2))
    weights = weights / weights.sum()
    angle = torch.deg2rad(streams.uniform(low=-MOTION_ANGLE_DEG, high=MOTION_ANGLE_DEG))
    d_col = (torch.cos(angle) * step)[:, None, None]  # (B, 1, 1) pixels per tap
    d_row = (torch.sin(angle) * step)[:, None, None]
    rows, cols = pixel_grid(x)
    out = torch.zeros_like(x)
    for tap, weight in zip(taps, weights, strict=True):
        out = out + weight * sample_at(x, rows + tap * d_row, cols + tap * d_col)
    return out


def zoom_blur(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Zoom blur: the mean of x and of x zoomed about its centre by 1, 1 + step, ..., max.

    (max zoom, step) per severity: CIFAR-10-C ((1.05, .01), (1.10, .01), (1.15, .01),
    (1.20, .01), (1.25, .01)); MNIST-C ((1.10, .01), (1.15, .01), (1.20, .02), (1.24, .02),
    (1.30, .03)). Zoom factors are relative, so nothing is scaled with the image size.
    """
    (largest, step), _ = lookup(ZOOM_MAX_STEP, table, severity)
    count = round((largest - 1.0) / step) + 1
    total = x.clone()
    for k in range(count):
        total = total + tvf.affine(
            x,
            angle=0.0,
            translate=[0.0, 0.0],
            scale=1.0 + k * step,
            shear=[0.0, 0.0],
            interpolation=tvf.InterpolationMode.BILINEAR,
        )
    return total / (count + 1)
