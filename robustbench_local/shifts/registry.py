"""The corruption registry and `corrupt`, the one entry point that checks its arguments.

Every corruption function has the shape ``(x, severity, table, streams) -> x'`` on a batch
already checked and converted to a float32/float64 working copy; `corrupt` does the checks,
the per-sample random streams, the final clipping and the conversion back, once for all.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from robustbench_local.registry import Registry
from robustbench_local.shifts import blur, digital, geometric, noise, photometric, weather
from robustbench_local.shifts.streams import SampleStreams, check_indices, stream_seed
from robustbench_local.shifts.tables import Table, resolve_table

__all__ = ["CORRUPTIONS", "FAMILIES", "MAX_SEVERITY", "Corruption", "check_images", "corrupt"]

CorruptionFn = Callable[[Tensor, int, Table, SampleStreams], Tensor]
"""``fn(x (B, C, H, W), severity 1..5, table, streams) -> (B, C, H, W)``."""

MAX_SEVERITY = 5
# Hendrycks and Dietterich's four families, and MNIST-C's affine maps as a fifth.
FAMILIES = ("noise", "blur", "weather", "digital", "geometric")


@dataclass(frozen=True)
class Corruption:
    """One registered corruption.

    Attributes:
        apply: the corruption function (see `CorruptionFn`).
        family: one of `FAMILIES`.
        description: one line for listings.
        colour_only: True where the corruption is undefined on gray images (saturate).
    """

    apply: CorruptionFn
    family: str
    description: str
    colour_only: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}; got {self.family!r}")


CORRUPTIONS: Registry[Corruption] = Registry("corruption")


def _register(name: str, corruption: Corruption) -> None:
    CORRUPTIONS.register(
        name, corruption, family=corruption.family, description=corruption.description
    )


_register("gaussian_noise", Corruption(noise.gaussian_noise, "noise", "additive Gaussian noise"))
_register("shot_noise", Corruption(noise.shot_noise, "noise", "Poisson (photon) noise"))
_register("impulse_noise", Corruption(noise.impulse_noise, "noise", "salt-and-pepper noise"))
_register(
    "speckle_noise", Corruption(noise.speckle_noise, "noise", "multiplicative Gaussian noise")
)
_register("gaussian_blur", Corruption(blur.gaussian_blur, "blur", "Gaussian blur"))
_register("defocus_blur", Corruption(blur.defocus_blur, "blur", "out-of-focus (disk) blur"))
_register("motion_blur", Corruption(blur.motion_blur, "blur", "motion blur, random direction"))
_register("zoom_blur", Corruption(blur.zoom_blur, "blur", "zoom blur about the centre"))
_register("fog", Corruption(weather.fog, "weather", "fog (plasma fractal)"))
_register(
    "brightness", Corruption(photometric.brightness, "weather", "brighter (HSV value + shift)")
)
_register("contrast", Corruption(photometric.contrast, "digital", "lower contrast"))
_register(
    "saturate",
    Corruption(photometric.saturate, "digital", "HSV saturation change", colour_only=True),
)
_register("pixelate", Corruption(digital.pixelate, "digital", "coarse pixels"))
_register("jpeg_compression", Corruption(digital.jpeg_compression, "digital", "JPEG artefacts"))
_register(
    "elastic_transform",
    Corruption(digital.elastic_transform, "digital", "elastic deformation"),
)
_register("rotate", Corruption(geometric.rotate_corruption, "geometric", "rotation, random sign"))
_register("shear", Corruption(geometric.shear, "geometric", "horizontal shear, random sign"))
_register("scale", Corruption(geometric.scale, "geometric", "shrink about the centre"))
_register("translate", Corruption(geometric.translate, "geometric", "shift, random signs"))


def check_images(x: object, argument: str = "x") -> Tensor:
    """x itself if it is a (B, C, H, W) floating tensor in [0, 1] with C 1 or 3, H and W >= 2.

    Raises:
        TypeError: x is not a tensor, or not a floating-point one.
        ValueError: the shape or the value range is wrong (NaN counts as out of range).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{argument} must be a torch.Tensor (B, C, H, W); got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{argument} must be a floating-point tensor with values in [0, 1]; got dtype {x.dtype}"
        )
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(
            f"{argument} must have shape (B, C, H, W) with C = 1 (gray) or 3 (colour) and "
            f"H, W >= 2; got shape {tuple(x.shape)}"
        )
    if x.numel():
        low, high = float(x.detach().min()), float(x.detach().max())
        if not (low >= 0.0 and high <= 1.0):  # written so that NaN fails too
            raise ValueError(
                f"{argument} must hold pixel values in [0, 1]; got values in [{low}, {high}]"
            )
    return x


def _check_severity(severity: object) -> int:
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise TypeError(
            f"severity must be an int from 0 to {MAX_SEVERITY}; got {type(severity).__name__}"
        )
    if not 0 <= severity <= MAX_SEVERITY:
        raise ValueError(
            f"severity must be an int from 0 (no corruption) to {MAX_SEVERITY}; got {severity}"
        )
    return int(severity)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    return int(seed)


def corrupt(
    x: Tensor,
    name: str,
    severity: int,
    *,
    seed: int = 0,
    indices: Tensor | Sequence[int] | None = None,
    table: Table | str | None = None,
) -> Tensor:
    """Corrupt a batch of images with a named corruption at a severity.

    Randomness (noise, directions, displacement fields) is drawn per sample from a stream
    seeded by (seed, name, severity, the sample's index), so a sample's corruption does not
    depend on the other samples in its batch, nor on the device. The index is the sample's
    position in its dataset: pass ``indices`` whenever x is one batch of a larger set (the
    benchmark passes the dataset indices), so that corrupting x[0:4] and x[4:8] with
    indices 0..3 and 4..7 gives exactly corrupting x[0:8] at once. Without it the samples
    are numbered 0 .. B-1, which is only batch-independent for a set corrupted whole.

    Args:
        x: (B, C, H, W) floating images in [0, 1], C = 1 (gray) or 3 (colour), any size of
            at least 2x2, on any device.
        name: a registered corruption (``CORRUPTIONS.names()``); ``saturate`` needs colour.
        severity: 1 (mild) .. 5 (severe); 0 returns a copy of x unchanged.
        seed: selects the random streams; the same arguments give the same output.
        indices: (B,) global sample indices; None for 0 .. B-1.
        table: the published severity table, "cifar10-c" or "mnist-c" (see `Table`); None
            for MNIST-C on gray inputs and CIFAR-10-C on colour ones.

    Returns:
        (B, C, H, W) with x's dtype and device, values in [0, 1], no gradient history.

    Raises:
        TypeError: an argument of the wrong type (x not a floating tensor, severity or seed
            not an int, bad indices).
        ValueError: a bad shape or value range, a severity outside 0..5, an unknown name or
            table (with the closest suggestion), saturate on a gray image, indices of the
            wrong length.
    """
    entry = CORRUPTIONS.entry(name)
    check_images(x)
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    index_list = check_indices(indices, x.shape[0])
    chosen = resolve_table(table, x.shape[1])
    corruption = entry.obj
    if corruption.colour_only and x.shape[1] != 3:
        raise ValueError(
            f"corruption {name!r} needs colour images (B, 3, H, W); got x of shape {tuple(x.shape)}"
        )
    if severity == 0 or x.shape[0] == 0:
        return x.detach().clone()
    # float16 and bfloat16 lack kernels on the CPU: work in float32 (float64 stays float64).
    work_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    seeds = [stream_seed(seed, name, severity, index) for index in index_list]
    streams = SampleStreams(seeds, x.device, work_dtype)
    with torch.no_grad():
        out = corruption.apply(x.detach().to(work_dtype), severity, chosen, streams)
        return out.clamp(0.0, 1.0).to(x.dtype)
