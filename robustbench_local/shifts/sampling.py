"""Resampling an image at per-sample coordinates: the primitive of every geometric warp here.

torchvision's ``affine``/``rotate``/``elastic`` take one set of parameters for the whole
batch, but the corruptions draw a direction or a displacement field per sample; so the warps
build per-sample coordinate grids and resample with ``torch.nn.functional.grid_sample``
(what torchvision uses underneath).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor

__all__ = ["pixel_grid", "sample_at"]


def sample_at(x: Tensor, rows: Tensor, cols: Tensor, padding: str = "border") -> Tensor:
    """Bilinear samples of x at per-sample pixel coordinates (pixel centres are integers).

    Args:
        x: (B, C, H, W).
        rows, cols: (B, H', W'), or (H', W') shared by all samples, coordinates in pixels:
            0 .. H-1 and 0 .. W-1 inside the image.
        padding: grid_sample's padding_mode for points outside ("zeros", "border",
            "reflection").

    Returns:
        (B, C, H', W').
    """
    height, width = x.shape[-2], x.shape[-1]
    # align_corners=True maps -1 and 1 to the centres of the edge pixels; a side of one
    # pixel has no extent, so any coordinate there maps to its centre.
    gx = 2.0 * cols / (width - 1) - 1.0 if width > 1 else torch.zeros_like(cols)
    gy = 2.0 * rows / (height - 1) - 1.0 if height > 1 else torch.zeros_like(rows)
    grid = torch.stack((gx, gy), dim=-1)
    grid = grid.expand(x.shape[0], *grid.shape[-3:])  # a grid shared by all samples
    return nnf.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def pixel_grid(x: Tensor) -> tuple[Tensor, Tensor]:
    """The (H, W) row and column index grids of x's pixels, in x's dtype and device."""
    rows = torch.arange(x.shape[-2], dtype=x.dtype, device=x.device)
    cols = torch.arange(x.shape[-1], dtype=x.dtype, device=x.device)
    return torch.meshgrid(rows, cols, indexing="ij")
