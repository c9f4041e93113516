"""Random transformations for EOT: differentiable in x, seeded by a generator, per sample."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable

import pytest
import torch
import torchvision.transforms.v2.functional as tvf
from torch import Tensor

from robustbench_local.registry import UnknownNameError
from robustbench_local.shifts import TRANSFORMS, RandomTransform, random_transform, rotate
from robustbench_local.shifts.transforms import (
    BLUR_SIGMA,
    BRIGHTNESS_RANGE,
    CONTRAST_RANGE,
    NOISE_STD,
    ROTATE_DEGREES,
    TRANSLATE_PIXELS_28,
)

NAMES = (
    "rotate",
    "translate",
    "scale",
    "brightness",
    "contrast",
    "gaussian_noise",
    "gaussian_blur",
)
CLIPPED = ("brightness", "contrast", "gaussian_noise")  # the ones that clamp to [0, 1]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, seed: int = 1) -> Tensor:
    """Uniform images in [low, high), float32, from their own generator."""
    return low + (high - low) * torch.rand(shape, generator=_gen(seed))


def _blob(side: int, sigma: float = 2.0) -> Tensor:
    """(1, 1, side, side) a radially symmetric Gaussian blob at the image centre."""
    t = torch.arange(side, dtype=torch.float64) - (side - 1) / 2
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    return torch.exp(-r2 / (2 * sigma**2))[None, None]


def _seeded(t: RandomTransform, seed: int = 0) -> Callable[[Tensor], Tensor]:
    """t with its parameters pinned: every call draws from a fresh generator seeded alike."""
    return lambda x: t(x, _gen(seed))


# --- the registry and the object ----------------------------------------------------------


def test_the_registry_lists_every_name_with_a_description() -> None:
    assert sorted(NAMES) == TRANSFORMS.names()
    for name in NAMES:
        description = TRANSFORMS.metadata(name)["description"]
        assert isinstance(description, str) and description


def test_a_transform_is_a_frozen_picklable_dataclass_with_a_readable_repr() -> None:
    t = random_transform(["rotate", "brightness"], severity=3)
    assert repr(t) == "RandomTransform(names=('rotate', 'brightness'), severity=3)"
    assert pickle.loads(pickle.dumps(t)) == t
    assert hash(t) == hash(RandomTransform(("rotate", "brightness"), 3))
    with pytest.raises(AttributeError):
        t.severity = 4  # type: ignore[misc]
    assert random_transform("scale").names == ("scale",)  # one name is a one-name tuple
    assert random_transform(["scale"]).severity == 3  # the default severity


# --- differentiability ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_each_transform(name: str) -> None:
    # Inputs well inside (0, 1), so that no clamp is active: the check is then on the
    # transformation itself. The blur needs a larger image for its sigma (scaled by the side)
    # to reach the neighbours.
    shape, severity = ((2, 1, 16, 16), 5) if name == "gaussian_blur" else ((2, 1, 5, 5), 3)
    x = _images(shape, 0.3, 0.7).double().requires_grad_()
    fn = _seeded(random_transform(name, severity))
    out = fn(x).detach()
    assert not torch.allclose(out, x, atol=1e-3)  # it does transform
    if name in CLIPPED:
        assert float(out.min()) > 0.0 and float(out.max()) < 1.0  # the clamp is inactive
    assert torch.autograd.gradcheck(fn, (x,))


def test_gradcheck_a_composition_of_every_transform() -> None:
    x = _images((2, 1, 8, 8), 0.35, 0.65).double().requires_grad_()
    fn = _seeded(random_transform(NAMES, severity=2))
    out = fn(x).detach()
    assert float(out[:, :, 3:5, 3:5].min()) > 0.0 and float(out.max()) < 1.0
    assert torch.autograd.gradcheck(fn, (x,))


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_range_and_gradient_on_a_colour_batch(name: str) -> None:
    x = _images((3, 3, 8, 8)).requires_grad_()
    out = random_transform(name, 5)(x, _gen())
    assert out.shape == (3, 3, 8, 8) and out.dtype == torch.float32
    assert float(out.detach().min()) >= 0.0 and float(out.detach().max()) <= 1.0
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --- seeding --------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [*NAMES, NAMES])
def test_the_same_seed_gives_the_same_output_and_another_seed_another(names: object) -> None:
    t = random_transform(names, 3)  # type: ignore[arg-type]
    x = _images((4, 3, 16, 16), 0.1, 0.9)
    assert torch.equal(t(x, _gen(0)), t(x, _gen(0)))
    assert not torch.equal(t(x, _gen(0)), t(x, _gen(1)))
    generator = _gen(0)
    assert not torch.equal(t(x, generator), t(x, generator))  # the generator advances


@pytest.mark.parametrize("name", NAMES)
def test_each_sample_draws_its_own_parameters(name: str) -> None:
    # Seed 2's first four uniform draws are 0.38 .. 0.64: each sample's blur sigma (0.38 to
    # 0.64 pixels here) reaches the neighbours, where sigmas near 0 would all leave x as is.
    assert float(torch.rand(4, generator=_gen(2)).min()) > 0.3
    x = _images((1, 1, 32, 32), 0.2, 0.8).expand(4, 1, 32, 32)  # four copies of one image
    out = random_transform(name, 5)(x, _gen(2))
    for i in range(4):
        for j in range(i):
            assert not torch.allclose(out[i], out[j], atol=1e-4), (i, j)


def test_a_composition_draws_as_its_parts_in_order() -> None:
    x = _images((4, 3, 12, 12))
    composed = random_transform(["rotate", "gaussian_noise", "brightness"], 4)(x, _gen(7))
    generator = _gen(7)
    by_parts = x
    for name in ("rotate", "gaussian_noise", "brightness"):
        by_parts = random_transform(name, 4)(by_parts, generator)
    assert torch.equal(composed, by_parts)


def test_float64_gets_the_parameters_of_float32() -> None:
    x = _images((3, 3, 12, 12))
    t = random_transform(NAMES, 4)
    torch.testing.assert_close(t(x.double(), _gen()), t(x, _gen()).double(), atol=1e-5, rtol=0)


def test_an_empty_batch_comes_back_without_drawing() -> None:
    generator = _gen()
    state = generator.get_state()
    out = random_transform(NAMES)(torch.zeros(0, 3, 8, 8), generator)
    assert out.shape == (0, 3, 8, 8)
    assert torch.equal(generator.get_state(), state)


# --- known answers --------------------------------------------------------------------------


def test_rotate_turns_by_the_documented_uniform_draw() -> None:
    # Parameters are low + (high - low) * torch.rand(B) from the generator (module docstring).
    x = _images((5, 3, 11, 11))
    a = ROTATE_DEGREES[2]
    angles = -a + 2 * a * torch.rand(5, generator=_gen(3))
    expected = rotate(x, angles)
    torch.testing.assert_close(random_transform("rotate", 3)(x, _gen(3)), expected)
    assert float(angles.abs().max()) <= a and len(set(angles.tolist())) == 5


@pytest.mark.parametrize("severity", [1, 5])
def test_brightness_adds_one_shift_per_sample_within_the_bound(severity: int) -> None:
    x = _images((16, 3, 8, 8), 0.3, 0.7)  # no clipping at any shift up to 0.3
    shift = random_transform("brightness", severity)(x, _gen()) - x  # (B, C, H, W)
    per_sample = shift.flatten(1)
    assert (per_sample.amax(1) - per_sample.amin(1)).max() < 1e-6  # one shift per sample
    bound = BRIGHTNESS_RANGE[severity - 1]
    assert float(shift.abs().max()) <= bound + 1e-6
    assert float(shift.abs().max()) > bound / 2  # 16 draws cover the range
    assert float(random_transform("brightness", 5)(torch.ones(4, 1, 4, 4), _gen()).min()) >= 0.0


def test_contrast_keeps_each_channels_mean_and_scales_about_it() -> None:
    x = _images((8, 3, 10, 10), 0.4, 0.6)  # |x - mean| <= 0.2, times <= 1.3: no clipping
    out = random_transform("contrast", 3)(x, _gen())
    means = x.mean(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(out.mean(dim=(-2, -1), keepdim=True), means)
    factor = ((out - means) / (x - means)).flatten(1)
    assert (factor.amax(1) - factor.amin(1)).max() < 1e-3  # one factor per sample
    c = CONTRAST_RANGE[2]
    assert ((factor >= 1 - c - 1e-4) & (factor <= 1 + c + 1e-4)).all()


def test_gaussian_noise_std_is_within_its_bound() -> None:
    x = torch.full((8, 1, 64, 64), 0.5)  # 0.5 +- 5 * 0.1: no clipping
    noise = (random_transform("gaussian_noise", 5)(x, _gen()) - x).flatten(1)
    stds = noise.std(dim=1)
    assert float(stds.max()) <= NOISE_STD[4] * 1.05
    assert float(noise.mean(dim=1).abs().max()) < 0.01
    assert float(stds.max() - stds.min()) > NOISE_STD[4] / 4  # the std is drawn per sample


def test_gaussian_blur_keeps_a_constant_image() -> None:
    x = torch.full((4, 3, 16, 16), 0.37)
    torch.testing.assert_close(random_transform("gaussian_blur", 5)(x, _gen()), x)


def test_gaussian_blur_is_torchvisions_blur_at_each_samples_sigma() -> None:
    x = _images((4, 3, 32, 32))
    top = BLUR_SIGMA[4]  # a 32-pixel side: no scaling
    sigmas = top * torch.rand(4, generator=_gen(5))
    size = 2 * math.ceil(4 * top) + 1
    expected = torch.cat(
        [
            tvf.gaussian_blur(x[i : i + 1], [size, size], [float(s), float(s)])
            for i, s in enumerate(sigmas)
        ]
    )
    torch.testing.assert_close(random_transform("gaussian_blur", 5)(x, _gen(5)), expected)


def test_translate_moves_the_centre_of_mass_within_the_bound() -> None:
    side = 28  # the reference side: the bound is TRANSLATE_PIXELS_28 pixels as it stands
    x = _blob(side).expand(16, 1, side, side).float()
    out = random_transform("translate", 5)(x, _gen())
    grid = torch.arange(side, dtype=torch.float32)

    def centre_of_mass(images: Tensor) -> Tensor:  # (B, 2) (row, col)
        mass = images.sum(dim=(-2, -1))[:, 0]
        rows = (images.sum(dim=-1)[:, 0] * grid).sum(-1) / mass
        cols = (images.sum(dim=-2)[:, 0] * grid).sum(-1) / mass
        return torch.stack((rows, cols), dim=-1)

    moved = centre_of_mass(out) - centre_of_mass(x)
    bound = TRANSLATE_PIXELS_28[4]
    assert float(moved.abs().max()) <= bound + 1e-3
    assert float(moved.abs().max()) > bound / 2  # 32 draws cover the range
    torch.testing.assert_close(out.sum(dim=(-2, -1)), x.sum(dim=(-2, -1)), rtol=1e-3, atol=0)


def test_scale_keeps_the_centre_pixel_and_the_symmetry_of_a_symmetric_image() -> None:
    x = _blob(9, sigma=1.5).expand(6, 1, 9, 9).float()
    out = random_transform("scale", 5)(x, _gen())
    torch.testing.assert_close(out[..., 4, 4], x[..., 4, 4])
    for flipped in (out.flip(-1), out.flip(-2), out.transpose(-2, -1)):
        torch.testing.assert_close(flipped, out)
    assert not torch.allclose(out, x, atol=1e-3)


# --- errors ---------------------------------------------------------------------------------


def test_an_unknown_name_names_its_position_and_the_closest_name() -> None:
    with pytest.raises(UnknownNameError, match=r"names\[0\]: unknown transform 'rotat'.*'rotate'"):
        random_transform("rotat")
    with pytest.raises(ValueError, match=r"names\[1\]: .*'brightnes' \(did you mean 'brightness'"):
        random_transform(["rotate", "brightnes"])
    with pytest.raises(TypeError, match=r"names\[1\]: transform name must be a string; got int"):
        random_transform(["rotate", 3])  # type: ignore[list-item]


@pytest.mark.parametrize("names", [None, 3, {"rotate"}])
def test_names_that_are_not_a_name_or_a_sequence_are_a_type_error(names: object) -> None:
    with pytest.raises(TypeError, match="names must be a transform name or a sequence"):
        random_transform(names)  # type: ignore[arg-type]


def test_an_empty_composition_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="names must name at least one transform"):
        random_transform([])


@pytest.mark.parametrize("severity", [0, -1, 6])
def test_a_severity_outside_1_to_5_is_a_value_error(severity: int) -> None:
    with pytest.raises(ValueError, match=rf"severity must be an int from 1 to 5; got {severity}"):
        random_transform("rotate", severity)
    with pytest.raises(ValueError, match="severity"):
        RandomTransform(("rotate",), severity)  # checked on direct construction too


@pytest.mark.parametrize("severity", [2.0, True, "3", None])
def test_a_severity_that_is_not_an_int_is_a_type_error(severity: object) -> None:
    with pytest.raises(TypeError, match="severity must be an int from 1 to 5; got"):
        random_transform("rotate", severity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (torch.rand(2, 1, 8, 8).numpy(), TypeError, "x must be a torch.Tensor .* got ndarray"),
        (
            torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
            TypeError,
            r"x must be a floating-point .* torch.uint8, shape \(2, 1, 8, 8\)",
        ),
        (
            torch.rand(1, 8, 8),
            ValueError,
            r"x must have shape \(B, C, H, W\); got shape \(1, 8, 8\)",
        ),
        (torch.rand(1, 1, 1, 8, 8), ValueError, r"got shape \(1, 1, 1, 8, 8\)"),
    ],
)
def test_bad_images_are_rejected_naming_x(x: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        random_transform("brightness")(x, _gen())  # type: ignore[arg-type]


@pytest.mark.parametrize("generator", [None, 0, "seed"])
def test_a_generator_that_is_not_a_torch_generator_is_a_type_error(generator: object) -> None:
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator; got"):
        random_transform("brightness")(torch.rand(2, 1, 4, 4), generator)  # type: ignore[arg-type]


# --- devices --------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_with_a_cuda_batch_draws_the_cpu_parameters() -> None:
    x = _images((3, 3, 16, 16), 0.1, 0.9)
    t = random_transform(NAMES, 4)
    x_cuda = x.cuda().requires_grad_()
    out = t(x_cuda, _gen())
    assert out.device == x_cuda.device
    torch.testing.assert_close(out.cpu(), t(x, _gen()), atol=1e-5, rtol=0)
    out.sum().backward()
    assert x_cuda.grad is not None and x_cuda.grad.abs().sum() > 0
    cuda_generator = torch.Generator(device="cuda").manual_seed(0)
    assert torch.equal(t(x_cuda, cuda_generator), t(x_cuda, cuda_generator.manual_seed(0)))
