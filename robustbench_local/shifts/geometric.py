"""MNIST-C's geometric corruptions: rotate, shear, scale and translate (Mu and Gilmer 2019).

Each takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` (these exist in
MNIST-C only, so its table is used for every input) and the batch's `SampleStreams`, and
returns (B, C, H, W). As the published code (scikit-image ``warp``), each is an affine map
about the image centre, bilinear, with black outside the image; the direction (the sign of
the angle, of the shear, of each shift) is drawn per sample. torchvision's ``affine`` takes
one set of parameters per batch and parametrises shear differently (tan rather than
scikit-image's sin/cos), so the maps are built here and resampled with ``sample_at``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from robustbench_local.shifts.sampling import pixel_grid, sample_at
from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import Table, lookup, pixel_scale

__all__ = ["affine_about_centre", "rotate", "rotate_corruption", "scale", "shear", "translate"]

# Mu and Gilmer 2019 (MNIST-C); CIFAR-10-C has no geometric corruptions.
ROTATE_RADIANS = {Table.MNIST_C: (0.2, 0.4, 0.6, 0.8, 1.0)}  # about 11, 23, 34, 46, 57 degrees
SHEAR_RADIANS = {Table.MNIST_C: (0.2, 0.4, 0.6, 0.8, 1.0)}
SCALE_ZOOM = {Table.MNIST_C: (0.9, 0.8, 0.7, 0.6, 0.5)}  # the image shrinks to this size
TRANSLATE_PIXELS = {Table.MNIST_C: (1.0, 2.0, 3.0, 4.0, 5.0)}  # on 28x28, scaled to x


def affine_about_centre(x: Tensor, matrix: Tensor, shift: Tensor | None = None) -> Tensor:
    """Resample x through an inverse affine map about the image centre, black outside.

    The output pixel at (col, row) takes the input at ``matrix @ (col - cc, row - cr) +
    (cc, cr) + shift``, with (cc, cr) = ((W - 1) / 2, (H - 1) / 2) the centre.

    Args:
        x: (B, C, H, W).
        matrix: (B, 2, 2) or (2, 2), acting on (col, row) offsets from the centre.
        shift: (B, 2) or (2,) (col, row) offsets in pixels; None for none.

    Returns:
        (B, C, H, W).
    """
    matrix = matrix.to(x.device, x.dtype).expand(x.shape[0], 2, 2)
    rows, cols = pixel_grid(x)
    centre_col, centre_row = (x.shape[-1] - 1) / 2, (x.shape[-2] - 1) / 2
    du, dv = cols - centre_col, rows - centre_row  # (H, W)
    m = matrix[:, :, :, None, None]  # (B, 2, 2, 1, 1)
    src_cols = m[:, 0, 0] * du + m[:, 0, 1] * dv + centre_col
    src_rows = m[:, 1, 0] * du + m[:, 1, 1] * dv + centre_row
    if shift is not None:
        shift = shift.to(x.device, x.dtype).expand(x.shape[0], 2)
        src_cols = src_cols + shift[:, 0, None, None]
        src_rows = src_rows + shift[:, 1, None, None]
    return sample_at(x, src_rows, src_cols, padding="zeros")


def _rotation(radians: Tensor) -> Tensor:
    """(B, 2, 2) rotation matrices; as an inverse map on (col, row) with rows pointing down,
    a positive angle turns the image counter-clockwise on screen, as ``torch.rot90``."""
    cos, sin = torch.cos(radians), torch.sin(radians)
    return torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)


def rotate(x: Tensor, degrees: float | Tensor) -> Tensor:
    """Rotate x counter-clockwise about its centre (bilinear, black corners).

    ``rotate(x, 90.0)`` equals ``torch.rot90(x, 1, dims=(-2, -1))`` on a square image, up to
    float rounding of cos(90 degrees).

    Args:
        x: (B, C, H, W).
        degrees: one angle for all samples, or (B,) angles.

    Returns:
        (B, C, H, W).
    """
    radians = torch.deg2rad(torch.as_tensor(degrees, dtype=x.dtype, device=x.device))
    return affine_about_centre(x, _rotation(radians.expand(x.shape[0])))


def rotate_corruption(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Rotation by angle * a random sign, angle per severity (MNIST-C, radians): 0.2, 0.4,
    0.6, 0.8, 1.0."""
    angle, _ = lookup(ROTATE_RADIANS, table, severity)
    return affine_about_centre(x, _rotation(angle * streams.signs()))


def shear(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Horizontal shear by angle * a random sign, angle per severity (MNIST-C, radians): 0.2,
    0.4, 0.6, 0.8, 1.0; scikit-image's shear matrix ((1, -sin a), (0, cos a)), which also
    stretches rows apart by 1 / cos a."""
    angle, _ = lookup(SHEAR_RADIANS, table, severity)
    angles = angle * streams.signs()
    zeros, ones = torch.zeros_like(angles), torch.ones_like(angles)
    first = torch.stack((ones, -torch.sin(angles)), -1)
    second = torch.stack((zeros, torch.cos(angles)), -1)
    return affine_about_centre(x, torch.stack((first, second), -2))


def scale(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Shrink about the centre to zoom times the size, zoom per severity (MNIST-C): 0.9, 0.8,
    0.7, 0.6, 0.5 (the published inverse maps scale by 1/0.9 ... 1/0.5)."""
    zoom, _ = lookup(SCALE_ZOOM, table, severity)
    return affine_about_centre(x, torch.eye(2, dtype=x.dtype) / zoom)


def translate(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Shift by pixels along each axis, each with a random sign; pixels per severity
    (MNIST-C, on 28x28, scaled to x's size): 1, 2, 3, 4, 5."""
    pixels, source = lookup(TRANSLATE_PIXELS, table, severity)
    shift = pixels * pixel_scale(x, source) * streams.signs(2)
    return affine_about_centre(x, torch.eye(2, dtype=x.dtype), shift)
