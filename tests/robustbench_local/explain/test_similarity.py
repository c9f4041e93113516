"""attribution_similarity: Spearman's rho per map, checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from robustbench_local.explain import attribution_similarity


def _maps(seed: int, shape: tuple[int, ...] = (6, 5, 7), levels: int | None = None):
    generator = torch.Generator().manual_seed(seed)
    maps = torch.rand(shape, generator=generator, dtype=torch.float64)
    return maps if levels is None else (maps * levels).floor()  # few levels: many ties


@pytest.mark.parametrize("levels", [None, 3, 10])
def test_matches_scipy_spearmanr_with_and_without_ties(levels: int | None) -> None:
    clean, adv = _maps(0, levels=levels), _maps(1, levels=levels)
    got = attribution_similarity(clean, adv)
    expected = [
        spearmanr(c.flatten().numpy(), a.flatten().numpy()).statistic
        for c, a in zip(clean, adv, strict=True)
    ]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_identical_maps_give_exactly_one() -> None:
    maps = _maps(2)
    assert torch.equal(attribution_similarity(maps, maps.clone()), torch.ones(6, dtype=maps.dtype))
    # Same order, other values (a monotone rescaling, as a more confident model's map).
    assert torch.equal(attribution_similarity(maps, 3.0 * maps**2), torch.ones(6, dtype=maps.dtype))


def test_reversed_order_gives_minus_one() -> None:
    maps = _maps(3)
    torch.testing.assert_close(
        attribution_similarity(maps, -maps), -torch.ones(6, dtype=maps.dtype), rtol=0, atol=1e-12
    )


def test_constant_maps() -> None:
    zeros = torch.zeros(2, 4, 4)
    varied = _maps(4, (2, 4, 4)).float()
    assert torch.equal(attribution_similarity(zeros, zeros), torch.ones(2))  # nothing changed
    assert torch.equal(attribution_similarity(zeros, torch.ones(2, 4, 4)), torch.ones(2))
    assert torch.equal(attribution_similarity(zeros, varied), torch.zeros(2))
    assert torch.equal(attribution_similarity(varied, zeros), torch.zeros(2))


def test_keeps_the_dtype_and_is_within_bounds() -> None:
    clean, adv = _maps(5).float(), _maps(6).float()
    rho = attribution_similarity(clean, adv)
    assert rho.dtype == torch.float32 and rho.shape == (6,)
    assert bool((rho >= -1).all() and (rho <= 1).all())


@pytest.mark.parametrize(
    ("clean", "adv", "error", "pattern"),
    [
        ([[0.0]], torch.zeros(1, 2), TypeError, r"clean_maps must be a torch\.Tensor"),
        (torch.zeros(3), torch.zeros(3), ValueError, r"clean_maps must have shape \(B, \.\.\.\)"),
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3), TypeError, r"clean_maps .*int64"),
        (torch.zeros(2, 3), torch.zeros(2, 4), ValueError, r"adv_maps must have .*\(2, 3\); got"),
        (torch.zeros(2, 3), torch.full((2, 3), float("inf")), ValueError, r"adv_maps must be fin"),
    ],
)
def test_bad_arguments_are_named(clean: object, adv: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        attribution_similarity(clean, adv)  # type: ignore[arg-type]
