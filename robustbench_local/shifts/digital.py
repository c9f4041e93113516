"""Digital corruptions: pixelation, JPEG compression and elastic deformation.

Each takes x (B, C, H, W) in [0, 1], a severity 1..5, the severity `Table` and the batch's
`SampleStreams`, and returns (B, C, H, W).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image
from torch import Tensor

from robustbench_local.shifts.blur import smooth
from robustbench_local.shifts.sampling import pixel_grid, sample_at
from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.tables import REFERENCE_SIZE, Table, lookup

__all__ = ["elastic_transform", "jpeg_compression", "pixelate"]

# Hendrycks and Dietterich 2019 (CIFAR-10-C); Mu and Gilmer 2019 (MNIST-C).
PIXELATE_FRACTION = {  # the side of the coarse image, as a fraction of the original's
    Table.CIFAR10_C: (0.95, 0.9, 0.85, 0.75, 0.65),
    Table.MNIST_C: (0.6, 0.5, 0.4, 0.3, 0.25),
}
JPEG_QUALITY = {
    Table.CIFAR10_C: (80, 65, 58, 50, 40),
    Table.MNIST_C: (25, 18, 15, 10, 7),
}
# (alpha, sigma, affine jitter), each a fraction of the image side: the displacement field is
# uniform noise smoothed with sigma and scaled by alpha; three anchor points of a random affine
# map move by up to the jitter. MNIST-C's table is not monotone; it is the published one.
ELASTIC_FRACTIONS = {
    Table.CIFAR10_C: (
        (0.0, 0.0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ),
    Table.MNIST_C: (
        (2.0, 0.7, 0.1),
        (2.0, 0.08, 0.2),
        (0.05, 0.01, 0.02),
        (0.07, 0.01, 0.02),
        (0.12, 0.01, 0.02),
    ),
}
# The published code reflects at the borders for CIFAR-10-C and pads with black for MNIST-C.
ELASTIC_PADDING = {Table.CIFAR10_C: "reflection", Table.MNIST_C: "zeros"}
ELASTIC_TRUNCATE = 3.0  # the displacement smoothing's kernel half-width, in sigmas


def pixelate(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Pixelation: box-downsample to fraction * the side, then box-upsample back.

    fraction per severity: CIFAR-10-C (0.95, 0.9, 0.85, 0.75, 0.65); MNIST-C (0.6, 0.5,
    0.4, 0.3, 0.25). The published code resizes with PIL's BOX filter; here both resizes
    are area averages (``interpolate(mode="area")``), batched on x's device.
    """
    fraction, _ = lookup(PIXELATE_FRACTION, table, severity)
    height, width = x.shape[-2], x.shape[-1]
    coarse = (max(1, int(height * fraction)), max(1, int(width * fraction)))
    small = nnf.interpolate(x, size=coarse, mode="area")
    return nnf.interpolate(small, size=(height, width), mode="area")


def jpeg_compression(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """JPEG compression at a quality per severity: CIFAR-10-C (80, 65, 58, 50, 40); MNIST-C
    (25, 18, 15, 10, 7).

    The image is rounded to 8 bits and saved and decoded with Pillow, one image at a time
    on the CPU, as the published code does: the same codec and settings give the published
    artefacts, and torchvision's own ``encode_jpeg``/``decode_jpeg`` are deprecated.
    """
    quality, _ = lookup(JPEG_QUALITY, table, severity)
    pixels = (x * 255.0).round().clamp(0, 255).to("cpu", torch.uint8)
    images = pixels.permute(0, 2, 3, 1).numpy()  # (B, H, W, C)
    decoded = [_jpeg_round_trip(image, quality) for image in images]
    out = torch.from_numpy(np.stack(decoded)).reshape(images.shape).permute(0, 3, 1, 2)
    return out.to(x.device, x.dtype) / 255.0


def _jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """One (H, W, C) uint8 image saved as JPEG at quality and decoded again."""
    gray = image.shape[-1] == 1
    picture = Image.fromarray(image[..., 0] if gray else image)  # uint8: "L" or "RGB"
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as coded:
        return np.asarray(coded.convert("L" if gray else "RGB"))


def _anchor_points(height: int, width: int, dtype: torch.dtype) -> Tensor:
    """The three (col, row) anchors of the random affine: corners of a square around the
    centre, a third of the side from it, as in the published code."""
    centre_col, centre_row, half = width // 2, height // 2, max(1, min(height, width) // 3)
    return torch.tensor(
        [
            [centre_col + half, centre_row + half],
            [centre_col + half, centre_row - half],
            [centre_col - half, centre_row - half],
        ],
        dtype=dtype,
    )


def _displacement(
    x: Tensor, alpha: float, sigma: float, source: Table, streams: SampleStreams
) -> Tensor:
    """Smooth random (B, 2, H, W) displacements in x's pixels: (col, row) offsets.

    Uniform noise smoothed with sigma and scaled by alpha (fractions of the side) has an
    amplitude in pixels that does not shrink with the image (smoothing a finer grid averages
    more values), so a field made at x's own size would displace an 8x8 digit as many pixels
    as a 28x28 one. The field is therefore made at the table's image size (28 or 32 on the
    shorter side), as published, then resized to x and its pixels scaled down with it.
    """
    height, width = x.shape[-2], x.shape[-1]
    side, reference = min(height, width), REFERENCE_SIZE[source]
    shape = (max(2, round(height * reference / side)), max(2, round(width * reference / side)))
    field = streams.uniform(2, *shape, low=-1.0, high=1.0)
    field = smooth(field, sigma * reference, truncate=ELASTIC_TRUNCATE) * (alpha * reference)
    field = nnf.interpolate(field, size=(height, width), mode="bilinear", align_corners=True)
    return field * (side / reference)


def elastic_transform(x: Tensor, severity: int, table: Table, streams: SampleStreams) -> Tensor:
    """Elastic deformation: a small random affine map, then a smooth random displacement.

    (alpha, sigma, jitter) per severity, as fractions of the side: CIFAR-10-C ((0, 0, .08),
    (.05, .2, .07), (.08, .06, .06), (.1, .04, .05), (.1, .03, .03)); MNIST-C ((2, .7, .1),
    (2, .08, .2), (.05, .01, .02), (.07, .01, .02), (.12, .01, .02)). The affine anchors
    move by up to jitter * side pixels; the displacement field is made at the table's
    image size and resized (see `_displacement`).

    The published code warps twice (``cv2.warpAffine``, then ``map_coordinates``); here the
    two maps are composed and the image resampled once, per sample (torchvision's
    ``elastic`` takes one displacement field for the whole batch).
    """
    (alpha, sigma, jitter), source = lookup(ELASTIC_FRACTIONS, table, severity)
    height, width = x.shape[-2], x.shape[-1]
    side = min(height, width)
    # The affine map, solved from where three jittered anchors come from: output point
    # q samples the input at inverse @ (q, 1).
    anchors = _anchor_points(height, width, x.dtype).to(x.device)  # (3, 2) (col, row)
    moved = anchors + streams.uniform(3, 2, low=-jitter * side, high=jitter * side)
    ones = torch.ones(*moved.shape[:2], 1, dtype=x.dtype, device=x.device)
    inverse = torch.linalg.solve(torch.cat((moved, ones), dim=-1), anchors.expand_as(moved))
    # inverse: (B, 3, 2), rows the coefficients of col, row and 1.
    field = _displacement(x, alpha, sigma, source, streams)
    rows, cols = pixel_grid(x)
    cols = cols + field[:, 0]
    rows = rows + field[:, 1]
    src_cols = inverse[:, 0, 0, None, None] * cols + inverse[:, 1, 0, None, None] * rows
    src_rows = inverse[:, 0, 1, None, None] * cols + inverse[:, 1, 1, None, None] * rows
    src_cols = src_cols + inverse[:, 2, 0, None, None]
    src_rows = src_rows + inverse[:, 2, 1, None, None]
    return sample_at(x, src_rows, src_cols, padding=ELASTIC_PADDING[source])
