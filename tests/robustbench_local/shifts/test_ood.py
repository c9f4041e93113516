"""The built-in out-of-distribution sources: shapes, range, determinism, character."""

from __future__ import annotations

import pytest
import torch

from robustbench_local.shifts import OOD_SOURCES, ood_images

SHAPES = [(1, 8, 8), (3, 32, 32), (1, 28, 28)]


def _make(name: str, n: int, shape: tuple[int, int, int], **kwargs: object) -> torch.Tensor:
    reference = torch.rand(n + 2, *shape, generator=torch.Generator().manual_seed(5))
    return ood_images(name, n, shape, reference=reference, **kwargs)  # type: ignore[arg-type]


def _neighbour_correlation(images: torch.Tensor) -> float:
    """The mean correlation of horizontally adjacent pixels, per image: ~0 for noise."""
    left = images[..., :, :-1].flatten(1)
    right = images[..., :, 1:].flatten(1)
    left = left - left.mean(1, keepdim=True)
    right = right - right.mean(1, keepdim=True)
    denominator = (left.norm(dim=1) * right.norm(dim=1)).clamp_min(1e-12)
    return float(((left * right).sum(1) / denominator).mean())


def test_the_sources_the_issue_asks_for() -> None:
    assert set(OOD_SOURCES) == {"noise", "blobs", "constant", "inverted", "sklearn-photos"}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", OOD_SOURCES.names())
def test_shape_range_dtype_and_determinism(name: str, shape: tuple[int, int, int]) -> None:
    images = _make(name, 6, shape)
    assert images.shape == (6, *shape) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert torch.equal(images, _make(name, 6, shape))
    # Image i comes from its own stream: a longer set starts with the shorter one.
    assert torch.equal(_make(name, 9, shape)[:6], images)
    assert _make(name, 0, shape).shape == (0, *shape)


@pytest.mark.parametrize("name", ["noise", "blobs", "constant", "sklearn-photos"])
def test_the_seed_selects_the_images(name: str) -> None:
    assert not torch.equal(_make(name, 4, (3, 16, 16)), _make(name, 4, (3, 16, 16), seed=1))


def test_each_source_differs_from_the_others() -> None:
    made = {name: _make(name, 8, (3, 16, 16)) for name in OOD_SOURCES}
    names = sorted(made)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert float((made[a] - made[b]).abs().mean()) > 0.05, (a, b)


def test_each_source_has_its_character() -> None:
    shape = (3, 32, 32)
    noise, blobs = _make("noise", 8, shape), _make("blobs", 8, shape)
    constant, photos = _make("constant", 8, shape), _make("sklearn-photos", 8, shape)
    assert abs(_neighbour_correlation(noise)) < 0.1
    assert _neighbour_correlation(blobs) > 0.9
    assert float(constant.flatten(2).std(dim=2).max()) == 0.0  # one colour per image...
    assert float(constant.flatten(1).std(dim=0).mean()) > 0.1  # ...not the same one
    # Natural patches: not flat, neighbouring pixels alike, images unlike each other.
    assert float(photos.flatten(1).std(dim=1).min()) > 0.02
    assert _neighbour_correlation(photos) > 0.5
    assert float((photos[:4] - photos[4:]).abs().mean()) > 0.05


def test_inverted_is_one_minus_the_reference_and_gray_photos_are_luminance() -> None:
    reference = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        ood_images("inverted", 3, (1, 8, 8), reference=reference), 1 - reference[:3]
    )
    reference64 = reference.double()
    assert ood_images("inverted", 3, (1, 8, 8), reference=reference64).dtype == torch.float64
    colour = ood_images("sklearn-photos", 4, (3, 16, 16))
    gray = ood_images("sklearn-photos", 4, (1, 16, 16))
    luma = (torch.tensor([0.2989, 0.587, 0.114])[:, None, None] * colour).sum(1, keepdim=True)
    torch.testing.assert_close(gray, luma, rtol=0, atol=1e-3)
