"""Corruptions against formulas, exact geometric answers and other libraries' code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from scipy.ndimage import gaussian_filter

from robustbench_local.shifts import corrupt, rotate
from robustbench_local.shifts.blur import disk_kernel
from robustbench_local.shifts.streams import SampleStreams
from robustbench_local.shifts.weather import plasma_fractal


def _rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _hsv_reference(x: torch.Tensor, change: str, a: float, b: float = 0.0) -> torch.Tensor:
    """matplotlib's RGB -> HSV -> RGB round trip, with V or S changed as the published code."""
    hsv = rgb_to_hsv(x.permute(0, 2, 3, 1).numpy())
    if change == "value":
        hsv[..., 2] = np.clip(hsv[..., 2] + a, 0, 1)
    else:
        hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
    return torch.from_numpy(hsv_to_rgb(hsv)).permute(0, 3, 1, 2)


# --- photometric formulas -------------------------------------------------------------------


def test_contrast_pulls_each_channel_towards_its_mean() -> None:
    for x, factor in ((_rand(3, 1, 8, 8), 0.2), (_rand(3, 3, 32, 32), 0.4)):  # severity 3
        means = x.mean(dim=(-2, -1), keepdim=True)
        expected = ((x - means) * factor + means).clamp(0, 1)
        torch.testing.assert_close(corrupt(x, "contrast", 3), expected)


def test_brightness_on_gray_adds_the_shift() -> None:
    x = _rand(3, 1, 8, 8)
    torch.testing.assert_close(corrupt(x, "brightness", 3), (x + 0.3).clamp(max=1.0))


def test_brightness_and_saturate_match_matplotlib_s_hsv_round_trip() -> None:
    x = _rand(2, 3, 16, 16)
    x[0, :, 0, 0] = 0.0  # black
    x[0, :, 0, 1] = 0.4  # gray: hue 0 in both libraries
    # Severity 4 of CIFAR-10-C: V + 0.2; S * 2 + 0.1; severity 1: S * 0.3.
    torch.testing.assert_close(
        corrupt(x, "brightness", 4), _hsv_reference(x, "value", 0.2), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        corrupt(x, "saturate", 4), _hsv_reference(x, "saturation", 2.0, 0.1), rtol=0, atol=1e-6
    )
    torch.testing.assert_close(
        corrupt(x, "saturate", 1), _hsv_reference(x, "saturation", 0.3), rtol=0, atol=1e-6
    )


# --- geometry: exact answers --------------------------------------------------------------------


@pytest.mark.parametrize("side", [7, 8])
def test_rotate_by_quarter_turns_equals_rot90(side: int) -> None:
    x = _rand(2, 3, side, side)
    torch.testing.assert_close(rotate(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)))
    torch.testing.assert_close(rotate(x, -90.0), torch.rot90(x, -1, dims=(-2, -1)))
    torch.testing.assert_close(rotate(x, 180.0), torch.flip(x, dims=(-2, -1)))
    torch.testing.assert_close(rotate(x, 0.0), x)
    per_sample = rotate(x, torch.tensor([90.0, 0.0], dtype=x.dtype))
    torch.testing.assert_close(per_sample[0], torch.rot90(x[0], 1, dims=(-2, -1)))
    torch.testing.assert_close(per_sample[1], x[1])


def _shifted(x: torch.Tensor, d_row: int, d_col: int) -> torch.Tensor:
    """x moved by (d_row, d_col) pixels, black where nothing moved in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    rows_out, rows_in = slice(max(d_row, 0), h + min(d_row, 0)), slice(max(-d_row, 0), h - d_row)
    cols_out, cols_in = slice(max(d_col, 0), w + min(d_col, 0)), slice(max(-d_col, 0), w - d_col)
    out[..., rows_out, cols_out] = x[..., rows_in, cols_in]
    return out


@pytest.mark.parametrize(("side", "severity", "pixels"), [(28, 3, 3), (56, 1, 2), (56, 2, 4)])
def test_translate_shifts_by_the_table_s_pixels_scaled_to_the_image(
    side: int, severity: int, pixels: int
) -> None:
    x = _rand(6, 1, side, side)
    out = corrupt(x, "translate", severity, seed=1)
    for i in range(len(x)):
        candidates = [_shifted(x[i], sr * pixels, sc * pixels) for sr in (-1, 1) for sc in (-1, 1)]
        errors = [float((out[i] - c).abs().max()) for c in candidates]
        assert min(errors) < 1e-5, errors


def test_shear_keeps_the_centre_row_and_scale_shrinks_about_the_centre() -> None:
    x = _rand(4, 1, 9, 9)
    sheared = corrupt(x, "shear", 5)
    torch.testing.assert_close(sheared[..., 4, :], x[..., 4, :])
    ones = torch.ones(1, 1, 28, 28, dtype=torch.float64)
    shrunk = corrupt(ones, "scale", 5)  # to half size: the centre stays, the corners go black
    assert float(shrunk[0, 0, 14, 14]) == pytest.approx(1.0)
    assert float(shrunk[0, 0, 0, 0]) == 0.0 and float(shrunk[0, 0, -1, -1]) == 0.0
    assert float(shrunk.mean()) == pytest.approx(0.25, abs=0.05)


# --- blur: other libraries and flat images --------------------------------------------------------


def test_gaussian_blur_matches_scipy_away_from_the_border() -> None:
    x = _rand(2, 3, 32, 32)
    out = corrupt(x, "gaussian_blur", 5)  # CIFAR-10-C sigma 1.0: a 9-tap kernel (truncate 4)
    expected = torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, 1.0, 1.0), truncate=4))
    torch.testing.assert_close(out[..., 4:-4, 4:-4], expected[..., 4:-4, 4:-4])


@pytest.mark.parametrize(
    "name", ["gaussian_blur", "defocus_blur", "motion_blur", "zoom_blur", "pixelate"]
)
def test_blurs_keep_a_flat_image_flat(name: str) -> None:
    flat = torch.full((2, 3, 32, 32), 0.6, dtype=torch.float64)
    torch.testing.assert_close(corrupt(flat, name, 5), flat)


def test_the_defocus_disk_is_normalised_symmetric_and_covers_its_area() -> None:
    for radius, alias in ((0.3, 0.4), (0.86, 0.03), (1.5, 0.1), (10.0, 0.5)):
        kernel = disk_kernel(radius, alias, torch.float64)
        assert float(kernel.sum()) == pytest.approx(1.0)
        torch.testing.assert_close(kernel, kernel.flip(0))
        torch.testing.assert_close(kernel, kernel.T)
    # A sub-pixel disk still spreads into the neighbours it overlaps (no alias blur).
    kernel = disk_kernel(0.86, 1e-3, torch.float64)
    assert kernel.shape == (3, 3) and float(kernel[0, 1]) > 0.05


def test_pixelate_averages_blocks() -> None:
    x = _rand(2, 1, 8, 8)
    # MNIST-C severity 2 keeps half the side: 8 -> 4 -> 8 repeats each 2x2 block's mean.
    expected = nnf.avg_pool2d(x, 2).repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)
    torch.testing.assert_close(corrupt(x, "pixelate", 2), expected)


# --- noise: statistics ----------------------------------------------------------------------------


def test_noise_statistics_follow_the_table() -> None:
    flat = torch.full((1, 1, 64, 64), 0.5, dtype=torch.float64)  # 4,096 values, gray: MNIST-C
    shot = corrupt(flat, "shot_noise", 1)  # Poisson(30) / 60: mean 0.5, std sqrt(30) / 60
    assert float(shot.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(shot.std()) == pytest.approx(30**0.5 / 60, rel=0.1)
    impulse = corrupt(flat, "impulse_noise", 5)  # amount 0.27, half salt, half pepper
    salt, pepper = float((impulse == 1).double().mean()), float((impulse == 0).double().mean())
    assert salt + pepper == pytest.approx(0.27, abs=0.03)
    assert salt == pytest.approx(pepper, abs=0.03)
    black = torch.zeros(1, 1, 16, 16)
    assert torch.equal(corrupt(black, "speckle_noise", 5), black)  # multiplicative


def test_jpeg_keeps_a_flat_image() -> None:
    flat = torch.full((2, 3, 16, 16), 100 / 255)
    torch.testing.assert_close(corrupt(flat, "jpeg_compression", 5), flat, rtol=0, atol=1.5 / 255)


# --- fog: the published formula -------------------------------------------------------------------


def test_fog_adds_a_full_range_plasma_then_rescales() -> None:
    flat = torch.full((3, 1, 32, 32), 0.5, dtype=torch.float64)
    thickness = 1.5  # MNIST-C severity 1 (gray input)
    out = corrupt(flat, "fog", 1)
    plasma = (out * (0.5 + thickness) / 0.5 - flat) / thickness  # the map is 32x32: uncropped
    assert plasma.amin(dim=(1, 2, 3)).abs().max() < 1e-9
    assert (plasma.amax(dim=(1, 2, 3)) - 1).abs().max() < 1e-9
    assert not torch.equal(plasma[0], plasma[1])  # one map per sample


def test_plasma_fractal_is_smooth_compared_with_noise() -> None:
    streams = SampleStreams([1, 2], torch.device("cpu"), torch.float64)
    maps = plasma_fractal(32, 2.0, streams)
    steps = (maps[:, 1:, :] - maps[:, :-1, :]).abs().mean()
    assert float(steps) < 0.1  # neighbouring values of uniform noise differ by 1/3 on average
