"""Differentiable, seeded random transformations, for expectation over transformation (EOT).

The corruptions of this package (`corrupt`) are fixed evaluation shifts: seeded per sample
index, computed without gradients, some not differentiable at all (JPEG, impulse noise). An
EOT attack (Athalye et al. 2018) needs the opposite: a random transformation t drawn afresh
at every step, and the gradient of loss(model(t(x))) with respect to x. The transformations
here are that: each is linear in x (the geometric ones and the blur) or affine in x and then
clipped to [0, 1] (clamp is differentiable almost everywhere), and each draws its random
parameters per sample from a caller's ``torch.Generator``:

    from robustbench_local.shifts import random_transform
    t = random_transform(["rotate", "brightness"], severity=3)
    x_t = t(x, torch.Generator(device=x.device).manual_seed(0))  # (B, C, H, W), grads to x

A transformation is ``t(x, generator) -> x'`` on x (B, C, H, W) floating; `RandomTransform`
composes the named ones in order, each drawing its own parameters. The ranges per severity,
the largest value of each parameter (drawn uniformly in the range shown):

    name            parameter                       1      2      3      4      5
    rotate          angle in [-a, a], degrees       6      12     18     24     30
    translate       shift in [-p, p] on each axis,  1      2      3      4      5
                    pixels of a 28-pixel side
    scale           zoom in [1 - z, 1 + z]          0.05   0.10   0.15   0.20   0.25
    brightness      shift in [-b, b]                0.05   0.10   0.15   0.20   0.30
    contrast        factor in [1 - c, 1 + c]        0.10   0.20   0.30   0.40   0.50
    gaussian_noise  std in [0, s]                   0.04   0.06   0.08   0.09   0.10
    gaussian_blur   sigma in [0, r], pixels of a    0.4    0.6    0.7    0.8    1.0
                    32-pixel side

Where a corruption of the same name has a published table the largest value is that
corruption's at the same severity: translate is MNIST-C's (Mu and Gilmer 2019), brightness,
gaussian_noise and gaussian_blur are CIFAR-10-C's (Hendrycks and Dietterich 2019), so the
EOT distribution spans that corruption from none up to its full strength. One table serves
gray and colour inputs alike (`corrupt` gives gray ones MNIST-C's much stronger values,
meant for digits). MNIST-C's rotate (11 to 57 degrees) and scale (shrinking to 0.9 .. 0.5)
and CIFAR-10-C's contrast (down to 0.15) are stronger than a distribution of nearby views
should be, so those three ranges are this module's own. Pixel ranges are scaled to x's size by
min(H, W) over the reference side (`tables.pixel_scale`), so a severity means the same
relative change on an 8x8 digit as on a 32x32 photo.

Randomness: every parameter is drawn as ``low + (high - low) * torch.rand(B, ...)`` (the
noise as ``torch.randn``) in float32 on the generator's device, then moved to x's device and
dtype. So a float64 x gets the same parameters as a float32 one, a CPU generator works with
a CUDA x (and the reverse), and the same generator state gives the same output. Draws on a
CUDA generator are other numbers than on a CPU one with the same seed, and a CPU generator
with a CUDA x copies the draws to the device (for gaussian_noise a whole (B, C, H, W)
tensor): seed a generator on x's device for speed. A sample's parameters depend on its
position in the batch and on the draws before it; unlike `corrupt`, nothing here is
batch-independent, which EOT does not need.

Geometric transformations resample bilinearly with black outside the image
(`geometric.affine_about_centre`), and the blur reflects at the borders, like the
corruptions; both are convex combinations of pixels, so they need no clipping.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor

from robustbench_local.registry import Registry
from robustbench_local.shifts.blur import GAUSSIAN_SIGMA
from robustbench_local.shifts.geometric import TRANSLATE_PIXELS, affine_about_centre, rotate
from robustbench_local.shifts.noise import GAUSSIAN_STD
from robustbench_local.shifts.photometric import BRIGHTNESS_SHIFT
from robustbench_local.shifts.tables import Table, pixel_scale

__all__ = [
    "BLUR_SIGMA",
    "BRIGHTNESS_RANGE",
    "CONTRAST_RANGE",
    "MAX_SEVERITY",
    "NOISE_STD",
    "ROTATE_DEGREES",
    "SCALE_RANGE",
    "TRANSFORMS",
    "TRANSLATE_PIXELS_28",
    "RandomTransform",
    "Transform",
    "TransformFn",
    "check_severity",
    "check_transform_names",
    "random_transform",
]

Transform = Callable[[Tensor, torch.Generator], Tensor]
"""``t(x (B, C, H, W), generator) -> (B, C, H, W)``, differentiable in x."""

TransformFn = Callable[[Tensor, int, torch.Generator], Tensor]
"""A registered transformation: ``fn(x (B, C, H, W), severity 1..5, generator) -> (B, C, H, W)``."""

MAX_SEVERITY = 5

# The largest parameter at severities 1..5 (see the module docstring's table).
ROTATE_DEGREES = (6.0, 12.0, 18.0, 24.0, 30.0)
TRANSLATE_PIXELS_28 = TRANSLATE_PIXELS[Table.MNIST_C]  # on a 28-pixel side, scaled to x
SCALE_RANGE = (0.05, 0.10, 0.15, 0.20, 0.25)
BRIGHTNESS_RANGE = BRIGHTNESS_SHIFT[Table.CIFAR10_C]
CONTRAST_RANGE = (0.1, 0.2, 0.3, 0.4, 0.5)
NOISE_STD = GAUSSIAN_STD[Table.CIFAR10_C]
BLUR_SIGMA = GAUSSIAN_SIGMA[Table.CIFAR10_C]  # on a 32-pixel side, scaled to x
BLUR_TRUNCATE = 4.0  # the blur kernel's half-width in (largest) sigmas, as `blur.smooth`

# Draws are made in float32 whatever x's dtype, as `streams` does: float64 draws from the
# same generator would be other numbers.
_DRAW_DTYPE = torch.float32


def _uniform(x: Tensor, generator: torch.Generator, low: float, high: float, *shape: int) -> Tensor:
    """(B, *shape) draws uniform in [low, high), on x's device and dtype."""
    u = torch.rand(
        (x.shape[0], *shape), generator=generator, device=generator.device, dtype=_DRAW_DTYPE
    )
    return (low + (high - low) * u).to(x.device, x.dtype)


def _per_sample(values: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1), to broadcast over an image batch."""
    return values[:, None, None, None]


def _rotate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Rotation about the centre by an angle uniform in [-a, a] degrees (a: `ROTATE_DEGREES`);
    positive angles turn counter-clockwise, as `geometric.rotate`."""
    top = ROTATE_DEGREES[severity - 1]
    return rotate(x, _uniform(x, generator, -top, top))


def _translate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Shift by (col, row) offsets each uniform in [-p, p] pixels, p from
    `TRANSLATE_PIXELS_28` scaled by min(H, W) / 28; black comes in at the edges."""
    top = TRANSLATE_PIXELS_28[severity - 1] * pixel_scale(x, Table.MNIST_C)
    shift = _uniform(x, generator, -top, top, 2)  # (B, 2) (col, row)
    return affine_about_centre(x, torch.eye(2, dtype=x.dtype), shift)


def _scale(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Zoom about the centre by a factor uniform in [1 - z, 1 + z] (z: `SCALE_RANGE`): above
    1 the image is enlarged and cropped, below 1 shrunk inside a black border."""
    top = SCALE_RANGE[severity - 1]
    zoom = _uniform(x, generator, 1.0 - top, 1.0 + top)
    eye = torch.eye(2, dtype=x.dtype, device=x.device)
    return affine_about_centre(x, eye / zoom[:, None, None])


def _brightness(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """x + shift, the shift uniform in [-b, b] (b: `BRIGHTNESS_RANGE`), the same for every
    pixel and channel of a sample; clipped to [0, 1]."""
    top = BRIGHTNESS_RANGE[severity - 1]
    return (x + _per_sample(_uniform(x, generator, -top, top))).clamp(0.0, 1.0)


def _contrast(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """(x - m) * factor + m, m each channel's mean over the image (as the contrast corruption),
    the factor uniform in [1 - c, 1 + c] (c: `CONTRAST_RANGE`); clipped to [0, 1]."""
    top = CONTRAST_RANGE[severity - 1]
    factor = _per_sample(_uniform(x, generator, 1.0 - top, 1.0 + top))
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * factor + means).clamp(0.0, 1.0)


def _gaussian_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """x + std * N(0, 1) per pixel and channel, std uniform in [0, s] per sample
    (s: `NOISE_STD`); clipped to [0, 1]. The std is drawn first, then the noise."""
    std = _per_sample(_uniform(x, generator, 0.0, NOISE_STD[severity - 1]))
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=_DRAW_DTYPE)
    return (x + std * noise.to(x.device, x.dtype)).clamp(0.0, 1.0)


def _gaussian_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Gaussian blur with sigma uniform in [0, r] per sample, r from `BLUR_SIGMA` scaled by
    min(H, W) / 32, reflecting at the borders.

    Every sample gets a kernel of the same width, 2 * radius + 1 with radius = ceil(4 r)
    (at most min(H, W) - 1, what reflection allows), and its own weights
    exp(-t^2 / (2 sigma^2)) normalised to sum 1, torchvision's Gaussian kernel; it is applied
    separably, as one depthwise conv2d per axis over the (1, B * C, H, W) batch, one group per
    sample and channel. sigma near 0 leaves the image as it is.
    """
    batch, channels, height, width = x.shape
    top = BLUR_SIGMA[severity - 1] * pixel_scale(x, Table.CIFAR10_C)
    sigma = _uniform(x, generator, 0.0, top)
    radius = min(max(1, math.ceil(BLUR_TRUNCATE * top)), min(height, width) - 1)
    if radius < 1 or batch == 0:  # a one-pixel side has nothing to blur across
        return x
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    # A floor on sigma keeps the division finite; at 1e-3 the off-centre weights are 0.
    kernel = torch.exp(-0.5 * (taps / sigma.clamp_min(1e-3)[:, None]) ** 2)  # (B, k)
    kernel = (kernel / kernel.sum(dim=-1, keepdim=True)).repeat_interleave(channels, dim=0)
    groups = batch * channels
    flat = x.reshape(1, groups, height, width)
    flat = nnf.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = nnf.conv2d(flat, kernel[:, None, None, :], groups=groups)
    flat = nnf.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = nnf.conv2d(flat, kernel[:, None, :, None], groups=groups)
    return flat.reshape(batch, channels, height, width)


TRANSFORMS: Registry[TransformFn] = Registry("transform")

for _name, _fn, _description in (
    ("rotate", _rotate, "rotation about the centre, angle uniform in [-a, a] degrees"),
    ("translate", _translate, "shift uniform in [-p, p] pixels along each axis"),
    ("scale", _scale, "zoom about the centre by a factor uniform in [1 - z, 1 + z]"),
    ("brightness", _brightness, "additive shift uniform in [-b, b]"),
    ("contrast", _contrast, "scale about each channel's mean, factor in [1 - c, 1 + c]"),
    ("gaussian_noise", _gaussian_noise, "additive N(0, std^2) noise, std uniform in [0, s]"),
    ("gaussian_blur", _gaussian_blur, "Gaussian blur, sigma uniform in [0, r] pixels"),
):
    TRANSFORMS.register(_name, _fn, description=_description)
del _name, _fn, _description


def check_transform_names(names: object, argument: str = "names") -> tuple[str, ...]:
    """One transform name or a non-empty sequence of them, as a tuple.

    Args:
        names: what to check.
        argument: how errors name it (a benchmark config calls it "transforms").

    Raises:
        TypeError: not a string or a sequence, or a name that is not a string.
        ValueError: empty, or an unknown name (``argument[i]``, with the closest valid one).
    """
    if isinstance(names, str):
        names = (names,)
    elif not isinstance(names, Sequence):
        raise TypeError(
            f"{argument} must be a transform name or a sequence of them "
            f"({', '.join(TRANSFORMS.names())}); got {type(names).__name__}"
        )
    names = tuple(names)
    if not names:
        raise ValueError(
            f"{argument} must name at least one transform (an empty composition is not "
            f"allowed); choose from {', '.join(TRANSFORMS.names())}"
        )
    for i, name in enumerate(names):
        try:
            TRANSFORMS.entry(name)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{argument}[{i}]: {error}") from None
    return names


def check_severity(severity: object) -> int:
    """An int from 1 to `MAX_SEVERITY`.

    Raises:
        TypeError: not an int (a bool included); ValueError: outside 1..5.
    """
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise TypeError(
            f"severity must be an int from 1 to {MAX_SEVERITY}; got {type(severity).__name__}"
        )
    if not 1 <= severity <= MAX_SEVERITY:
        raise ValueError(f"severity must be an int from 1 to {MAX_SEVERITY}; got {severity}")
    return int(severity)


def _check_inputs(x: object, generator: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor (B, C, H, W); got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point tensor (B, C, H, W); got dtype {x.dtype}, "
            f"shape {tuple(x.shape)}"
        )
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W); got shape {tuple(x.shape)}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
    return x


@dataclass(frozen=True)
class RandomTransform:
    """A composition of named random transformations at one severity, applied in order.

    Build it with `random_transform`; the fields are checked here too, so a direct
    ``RandomTransform(("rotate",), 2)`` is as safe. Frozen, hashable and picklable (it holds
    names, not functions), with the readable repr
    ``RandomTransform(names=('rotate', 'brightness'), severity=3)``.

    Attributes:
        names: the transformations (`TRANSFORMS`), applied first to last; a name may repeat.
        severity: 1 (mild) .. 5 (strong); the ranges are in the module docstring.
    """

    names: tuple[str, ...]
    severity: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", check_transform_names(self.names))
        object.__setattr__(self, "severity", check_severity(self.severity))

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Transform x, drawing each transformation's parameters per sample from generator.

        Args:
            x: (B, C, H, W) floating images, normally in [0, 1]; any C, H and W, any device.
                Values are not checked (that would synchronise a CUDA device at every call).
            generator: the source of every random draw, on any device (see the module
                docstring); it advances, so successive calls draw new parameters.

        Returns:
            (B, C, H, W) with x's dtype and device, differentiable in x; in [0, 1] when x is.
            An empty batch comes back as it is, with no draws.

        Raises:
            TypeError: x is not a floating-point tensor, or generator not a torch.Generator.
            ValueError: x is not 4-D (B, C, H, W).
        """
        x = _check_inputs(x, generator)
        if x.shape[0] == 0:
            return x
        for name in self.names:
            x = TRANSFORMS.get(name)(x, self.severity, generator)
        return x


def random_transform(names: str | Sequence[str], severity: int = 3) -> RandomTransform:
    """A random transformation for EOT: the named ones composed in order, at one severity.

    Example:
        >>> t = random_transform(["rotate", "gaussian_noise"], severity=2)
        >>> x_t = t(x, torch.Generator().manual_seed(0))  # (B, C, H, W), differentiable in x

    Args:
        names: one name or a non-empty sequence of names from `TRANSFORMS`: "rotate",
            "translate", "scale", "brightness", "contrast", "gaussian_noise",
            "gaussian_blur". Each applies in turn and draws its own parameters.
        severity: 1..5, the range of every parameter (the module docstring's table). There
            is no severity 0: for no transformation, do not transform.

    Returns:
        a `RandomTransform`, callable as ``t(x (B, C, H, W), generator) -> (B, C, H, W)``.

    Raises:
        TypeError: names is not a string or a sequence, a name is not a string, severity is
            not an int.
        ValueError: names is empty, a name is unknown (an `UnknownNameError` naming its
            position and the closest valid name), severity is outside 1..5.
    """
    return RandomTransform(names=check_transform_names(names), severity=severity)
