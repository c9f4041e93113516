"""Invariants every registered corruption keeps, parametrised over the registry."""

from __future__ import annotations

import pytest
import torch

from robustbench_local.shifts import CORRUPTIONS, FAMILIES, Table, corrupt

ALL = CORRUPTIONS.names()
GRAY = [name for name in ALL if not CORRUPTIONS.get(name).colour_only]
SEVERITIES = [1, 2, 3, 4, 5]
# Those whose output depends on random draws (the others are deterministic maps).
RANDOM = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "motion_blur",
    "fog",
    "elastic_transform",
    "rotate",
    "shear",
    "translate",
]
# Those whose published parameters strengthen from severity 1 to 5 (elastic_transform's
# tables are not monotone; saturate first washes colours out, then exaggerates them).
MONOTONE = [name for name in ALL if name not in ("elastic_transform", "saturate")]


def _images(request: pytest.FixtureRequest, kind: str) -> torch.Tensor:
    return request.getfixturevalue("gray8" if kind == "gray" else "colour32")


def test_the_registry_holds_the_issue_s_corruptions() -> None:
    wanted = {
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "speckle_noise",
        "defocus_blur",
        "gaussian_blur",
        "motion_blur",
        "zoom_blur",
        "contrast",
        "brightness",
        "saturate",
        "pixelate",
        "jpeg_compression",
        "elastic_transform",
        "fog",
        "rotate",
        "shear",
        "scale",
        "translate",
    }
    assert wanted <= set(ALL)
    assert all(CORRUPTIONS.metadata(name)["family"] in FAMILIES for name in ALL)


@pytest.mark.parametrize(
    ("name", "kind"), [(name, "gray") for name in GRAY] + [(name, "colour") for name in ALL]
)
def test_each_severity_changes_the_image_and_keeps_shape_dtype_and_range(
    request: pytest.FixtureRequest, name: str, kind: str
) -> None:
    x = _images(request, kind)
    before = x.clone()
    same = corrupt(x, name, 0)
    assert torch.equal(same, x) and same is not x
    changes = []
    for severity in SEVERITIES:
        out = corrupt(x, name, severity, seed=3)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        changes.append(float((out - x).abs().mean()))
        assert torch.equal(out, corrupt(x, name, severity, seed=3))  # deterministic
    assert torch.equal(x, before)  # the input is never modified
    assert min(changes) > 1e-3, changes
    if name in MONOTONE:
        # Monotone-ish: severity 5 changes the image more than severity 1.
        assert changes[-1] > changes[0], changes


@pytest.mark.parametrize("name", RANDOM)
def test_the_seed_selects_the_random_draws(gray8: torch.Tensor, name: str) -> None:
    assert not torch.equal(corrupt(gray8, name, 3, seed=0), corrupt(gray8, name, 3, seed=1))


@pytest.mark.parametrize("name", ALL)
def test_a_sample_s_corruption_does_not_depend_on_its_batch(
    colour32: torch.Tensor, name: str
) -> None:
    whole = corrupt(colour32, name, 4, seed=7, indices=torch.arange(8))
    first = corrupt(colour32[:4], name, 4, seed=7, indices=torch.arange(4))
    second = corrupt(colour32[4:], name, 4, seed=7, indices=[4, 5, 6, 7])
    # The draws are identical; a convolution may round differently for another batch size.
    torch.testing.assert_close(torch.cat((first, second)), whole, rtol=0, atol=1e-5)
    # And reordering the batch reorders the results.
    order = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    shuffled = corrupt(colour32[order], name, 4, seed=7, indices=order)
    torch.testing.assert_close(shuffled, whole[order], rtol=0, atol=1e-5)


def test_without_indices_samples_are_numbered_by_batch_position(gray8: torch.Tensor) -> None:
    # Documented behaviour: indices default to 0..B-1, so a second batch without indices
    # repeats the first batch's noise pattern, and passing the indices avoids it.
    zeros = torch.zeros_like(gray8[:4])
    first = corrupt(zeros, "gaussian_noise", 5)
    assert torch.equal(corrupt(zeros, "gaussian_noise", 5), first)
    assert not torch.equal(corrupt(zeros, "gaussian_noise", 5, indices=[4, 5, 6, 7]), first)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["gaussian_noise", "motion_blur", "jpeg_compression", "rotate"])
def test_other_float_dtypes_come_back_unchanged(
    colour32: torch.Tensor, name: str, dtype: torch.dtype
) -> None:
    out = corrupt(colour32.to(dtype), name, 3)
    assert out.dtype == dtype
    reference = corrupt(colour32, name, 3).to(dtype)
    torch.testing.assert_close(out, reference, rtol=0, atol=0.02)


@pytest.mark.parametrize("name", ALL)
def test_non_square_and_tiny_images_keep_their_shape(name: str) -> None:
    for shape in ((2, 3, 12, 9), (2, 3, 2, 2), (2, 1, 5, 31)):
        if shape[1] == 1 and name not in GRAY:
            continue
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        out = corrupt(x, name, 5)
        assert out.shape == x.shape
        assert torch.isfinite(out).all() and float(out.min()) >= 0.0 and float(out.max()) <= 1


def test_an_empty_batch_and_a_gradient_carrying_input(colour32: torch.Tensor) -> None:
    empty = colour32[:0]
    assert corrupt(empty, "fog", 3).shape == empty.shape
    x = colour32.clone().requires_grad_(True)
    out = corrupt(x, "gaussian_blur", 2)
    assert not out.requires_grad


def test_the_table_defaults_to_mnist_c_for_gray_and_cifar10_c_for_colour() -> None:
    # Severity 1: std 0.08 (MNIST-C) or 0.04 (CIFAR-10-C), far from clipping at 0.5 +- 0.5.
    flat = torch.full((1, 1, 64, 64), 0.5)
    for table, std in ((None, 0.08), ("mnist-c", 0.08), (Table.CIFAR10_C, 0.04)):
        noise = corrupt(flat, "gaussian_noise", 1, table=table) - flat
        # 4,096 draws: the sample std is within 10% of the table's (about 9 standard errors).
        assert abs(float(noise.std()) / std - 1) < 0.1
    colour = torch.full((1, 3, 64, 64), 0.5)
    noise = corrupt(colour, "gaussian_noise", 1) - colour
    assert abs(float(noise.std()) / 0.04 - 1) < 0.1


@pytest.mark.gpu
@pytest.mark.parametrize("name", ALL)
def test_a_cuda_batch_gets_the_cpu_batch_s_corruption(colour32: torch.Tensor, name: str) -> None:
    # The draws are made on the CPU whatever the device, so only the kernels' rounding
    # differs (cuDNN convolutions may run in TF32, about 3 decimal digits).
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; torch.cuda.is_available() is False")
    on_gpu = corrupt(colour32.cuda(), name, 4, seed=2)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), corrupt(colour32, name, 4, seed=2), rtol=0, atol=5e-3)
