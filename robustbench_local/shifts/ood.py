"""Out-of-distribution image sources that need no download, shaped like any dataset.

``ood_images(name, n, (C, H, W))`` returns n images in [0, 1] that a classifier of that
input shape should flag as unfamiliar:

- ``noise``: independent uniform pixels.
- ``blobs``: a few smooth Gaussian bumps of random position, width and colour.
- ``constant``: each image one random flat colour (or gray level).
- ``inverted``: the in-distribution test images, inverted (1 - x); needs ``reference``.
- ``sklearn-photos``: random patches of the two photographs that ship with scikit-learn
  (``sklearn.datasets.load_sample_images``: a Chinese temple and a flower), resized to
  (H, W) and, for C = 1, turned gray by luminance.

Like the corruptions, each image is drawn from its own seeded stream, keyed by its position:
``ood_images(name, 10, ...)`` is the first ten of ``ood_images(name, 20, ...)``.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as tvf
from torch import Tensor
from torchvision.ops import roi_align

from robustbench_local.registry import Registry
from robustbench_local.shifts.registry import check_images
from robustbench_local.shifts.streams import SampleStreams, stream_seed

__all__ = ["OOD_SOURCES", "OodSource", "match_shape", "ood_images"]

Shape = tuple[int, int, int]
SourceFn = Callable[[int, Shape, SampleStreams, "Tensor | None"], Tensor]
"""``fn(n, (C, H, W), streams, reference) -> (n, C, H, W)`` on the streams' device."""


@dataclass(frozen=True)
class OodSource:
    """One registered OOD source.

    Attributes:
        make: the image maker (see `SourceFn`).
        description: one line for listings.
        needs_reference: True when it transforms the in-distribution images.
    """

    make: SourceFn
    description: str
    needs_reference: bool = False


OOD_SOURCES: Registry[OodSource] = Registry("ood source")

BLOBS_PER_IMAGE = 3
BLOB_SIGMA = (0.08, 0.3)  # a blob's width, as a fraction of the image's shorter side
PATCH_FRACTION = (0.1, 0.6)  # a photo patch's height, as a fraction of the photo's


def _noise(n: int, shape: Shape, streams: SampleStreams, reference: Tensor | None) -> Tensor:
    return streams.uniform(*shape)


def _blobs(n: int, shape: Shape, streams: SampleStreams, reference: Tensor | None) -> Tensor:
    channels, height, width = shape
    k = BLOBS_PER_IMAGE
    centre_rows = streams.uniform(k) * (height - 1)  # (n, k)
    centre_cols = streams.uniform(k) * (width - 1)
    low, high = BLOB_SIGMA
    sigmas = streams.uniform(k, low=low, high=high) * min(height, width)
    colours = streams.uniform(k, channels, low=0.2, high=1.0)  # (n, k, C)
    rows = torch.arange(height, dtype=streams.dtype, device=streams.device)[:, None]
    cols = torch.arange(width, dtype=streams.dtype, device=streams.device)[None, :]
    dist2 = (rows - centre_rows[..., None, None]) ** 2 + (cols - centre_cols[..., None, None]) ** 2
    bumps = torch.exp(-dist2 / (2 * sigmas[..., None, None] ** 2))  # (n, k, H, W)
    images = torch.einsum("nkhw,nkc->nchw", bumps, colours)
    # Scaled so the brightest value is 1: overlapping bumps would otherwise clip flat.
    return images / images.amax(dim=(1, 2, 3), keepdim=True)


def _constant(n: int, shape: Shape, streams: SampleStreams, reference: Tensor | None) -> Tensor:
    channels, height, width = shape
    return streams.uniform(channels)[:, :, None, None].expand(n, channels, height, width).clone()


def _inverted(n: int, shape: Shape, streams: SampleStreams, reference: Tensor | None) -> Tensor:
    if reference is None:  # ood_images checks this first; kept for direct calls
        raise ValueError("the 'inverted' source needs reference= the in-distribution images")
    return 1.0 - reference[:n].to(streams.device, streams.dtype)


@functools.lru_cache(maxsize=1)
def _photos() -> Tensor:
    """scikit-learn's two sample photos as float32 (2, 3, 427, 640) in [0, 1], loaded once."""
    from sklearn.datasets import load_sample_images  # sklearn is heavy: import on first use

    images = torch.stack([torch.tensor(image) for image in load_sample_images().images])
    return images.permute(0, 3, 1, 2).float() / 255.0


def _photo_patches(
    n: int, shape: Shape, streams: SampleStreams, reference: Tensor | None
) -> Tensor:
    channels, height, width = shape
    photos = _photos()
    count, _, photo_h, photo_w = photos.shape
    draws = streams.uniform(4).cpu().to(torch.float64)  # which photo, size, top, left
    which = (draws[:, 0] * count).floor().clamp(max=count - 1)
    low, high = PATCH_FRACTION
    patch_h = (low + (high - low) * draws[:, 1]) * photo_h
    patch_w = (patch_h * width / height).clamp(max=photo_w)  # the target's aspect ratio
    top = draws[:, 2] * (photo_h - patch_h)
    left = draws[:, 3] * (photo_w - patch_w)
    boxes = torch.stack((which, left, top, left + patch_w, top + patch_h), dim=1).float()
    # roi_align crops and resizes a batch of boxes at once; sampling_ratio=-1 averages
    # about (patch side / output side)^2 points per output pixel, an anti-aliased resize.
    patches = roi_align(photos, boxes, output_size=(height, width), sampling_ratio=-1, aligned=True)
    if channels == 1:
        patches = tvf.rgb_to_grayscale(patches)  # ITU-R 601 luma
    return patches.clamp(0.0, 1.0).to(streams.device, streams.dtype)


OOD_SOURCES.register("noise", OodSource(_noise, "uniform random pixels"))
OOD_SOURCES.register("blobs", OodSource(_blobs, "smooth Gaussian blobs"))
OOD_SOURCES.register("constant", OodSource(_constant, "flat images of one random colour"))
OOD_SOURCES.register(
    "inverted", OodSource(_inverted, "the test images inverted (1 - x)", needs_reference=True)
)
OOD_SOURCES.register(
    "sklearn-photos", OodSource(_photo_patches, "patches of scikit-learn's sample photographs")
)


def _check_shape(shape: object) -> Shape:
    if (
        not isinstance(shape, Sequence)
        or isinstance(shape, str)
        or len(shape) != 3
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in shape)
    ):
        raise TypeError(f"shape must be a (C, H, W) tuple of 3 ints; got {shape!r}")
    channels, height, width = (int(v) for v in shape)
    if channels not in (1, 3) or height < 2 or width < 2:
        raise ValueError(
            f"shape must be (C, H, W) with C = 1 or 3 and H, W >= 2; got {tuple(shape)}"
        )
    return channels, height, width


def ood_images(
    name: str,
    n: int,
    shape: Sequence[int],
    *,
    seed: int = 0,
    reference: Tensor | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """n out-of-distribution images of the given shape from a named source.

    Args:
        name: a registered source (``OOD_SOURCES.names()``).
        n: how many images, >= 0.
        shape: (C, H, W) of the in-distribution images, C = 1 or 3, H, W >= 2.
        seed: selects the random streams; the same arguments give the same images.
        reference: (N, C, H, W) in-distribution images in [0, 1] with N >= n, needed by
            "inverted" (which returns 1 - reference[:n]); the other sources ignore it.
        device: where the images go; None for reference's device, else the CPU.

    Returns:
        (n, C, H, W) float32 (float64 for a float64 reference) in [0, 1].

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an unknown source (with the closest suggestion), n < 0, a bad shape, or
            for "inverted" a missing or mismatched reference.
    """
    source = OOD_SOURCES.entry(name).obj
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int; got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    checked = _check_shape(shape)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    dtype = torch.float32
    if source.needs_reference:
        if reference is None:
            raise ValueError(
                f"ood source {name!r} needs reference=, the (N, C, H, W) in-distribution images"
            )
        check_images(reference, "reference")
        if tuple(reference.shape[1:]) != checked or reference.shape[0] < n:
            raise ValueError(
                f"reference must have shape (N, {', '.join(map(str, checked))}) with N >= n = "
                f"{n}; got shape {tuple(reference.shape)}"
            )
        dtype = torch.float64 if reference.dtype == torch.float64 else torch.float32
    if device is None:
        device = reference.device if reference is not None else torch.device("cpu")
    seeds = [stream_seed(int(seed), f"ood:{name}", 0, i) for i in range(n)]
    streams = SampleStreams(seeds, torch.device(device), dtype)
    with torch.no_grad():
        return source.make(int(n), checked, streams, reference).clamp(0.0, 1.0)


def match_shape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Images of another dataset as inputs of this one: channels and size converted.

    Colour becomes gray by luminance (ITU-R 601) and gray becomes colour by repeating the
    channel; the size changes by an anti-aliased bilinear resize. So Fashion-MNIST can be
    the out-of-distribution set of an MNIST model, or SVHN of a CIFAR-10 model.

    Args:
        x: (N, C', H', W') images in [0, 1], C' = 1 or 3.
        shape: the target (C, H, W), C = 1 or 3.

    Returns:
        (N, C, H, W) images in [0, 1], x's dtype and device.
    """
    channels, height, width = _check_shape(shape)
    check_images(x)
    if x.shape[1] == 3 and channels == 1:
        x = tvf.rgb_to_grayscale(x)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (height, width):
        x = torch.nn.functional.interpolate(
            x, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
    return x.clamp(0.0, 1.0)
