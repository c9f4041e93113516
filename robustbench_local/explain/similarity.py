"""How alike two attribution maps are: Spearman's rank correlation, per image.

Ranks, not values: a saliency map's scale changes with the model's confidence (an adversarial
input often has a far smaller or larger gradient), while the question is whether the model
looks at the same pixels in the same order of importance.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..N of each row's values, ties given the mean of the ranks they span (as
    scipy.stats.rankdata's default), in float64.

    Args:
        values: (B, N).

    Returns:
        (B, N) float64 ranks.
    """
    ranks = torch.empty(values.shape, dtype=torch.float64, device=values.device)
    for row in range(values.shape[0]):
        _, inverse, counts = torch.unique(values[row], return_inverse=True, return_counts=True)
        last = counts.cumsum(0).to(torch.float64)  # rank of each distinct value's last copy
        first = last - counts.to(torch.float64) + 1.0
        ranks[row] = ((first + last) / 2.0)[inverse]
    return ranks


def _check_maps(name: str, maps: object) -> Tensor:
    if not isinstance(maps, Tensor):
        kind = type(maps).__name__
        raise TypeError(f"{name} must be a torch.Tensor of maps (B, ...); got {kind}")
    if not maps.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {maps.dtype}")
    if maps.dim() < 2 or maps.shape[0] == 0 or maps[0].numel() == 0:
        raise ValueError(
            f"{name} must have shape (B, ...) with B >= 1 and a non-empty map; "
            f"got {tuple(maps.shape)}"
        )
    if not torch.isfinite(maps).all():
        bad = int((~torch.isfinite(maps)).sum())
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite values")
    return maps


def attribution_similarity(clean_maps: Tensor, adv_maps: Tensor) -> Tensor:
    """Spearman rank correlation between each clean map and its adversarial counterpart.

    Each map is flattened; tied values get their average rank (scipy's convention), and the
    correlation is Pearson's on the ranks, computed in float64.

    Defined where Spearman's is not: two maps with the same ranks give exactly 1.0, not
    1 - rounding; that covers identical maps (eps 0) and two constant maps (e.g. both all-zero
    where a saturated model has no gradient: no order, and none changed). Otherwise a constant
    map gives 0.0: it ranks no pixel above another, so it agrees with no order (scipy returns
    NaN, which would poison a mean over images).

    Args:
        clean_maps: (B, ...) maps, e.g. `attribution_maps` of the clean inputs (B, H, W).
        adv_maps: maps of the same shape, e.g. of the adversarial inputs.

    Returns:
        (B,) correlations in [-1, 1], in clean_maps' dtype, on its device.
    """
    clean_maps = _check_maps("clean_maps", clean_maps)
    adv_maps = _check_maps("adv_maps", adv_maps)
    if adv_maps.shape != clean_maps.shape:
        raise ValueError(
            f"adv_maps must have clean_maps' shape {tuple(clean_maps.shape)}; "
            f"got {tuple(adv_maps.shape)}"
        )
    if adv_maps.device != clean_maps.device:
        raise ValueError(
            f"adv_maps must be on clean_maps' device {clean_maps.device}; got {adv_maps.device}"
        )
    clean = clean_maps.detach().flatten(1)
    adv = adv_maps.detach().flatten(1).to(clean.dtype)
    clean_ranks = _average_ranks(clean)
    adv_ranks = _average_ranks(adv)
    clean_centred = clean_ranks - clean_ranks.mean(dim=1, keepdim=True)
    adv_centred = adv_ranks - adv_ranks.mean(dim=1, keepdim=True)
    norms = clean_centred.norm(dim=1) * adv_centred.norm(dim=1)
    covariance = (clean_centred * adv_centred).sum(dim=1)
    # A constant map has centred ranks exactly 0 (all ranks equal the mean), so norms == 0
    # picks out exactly the undefined rows.
    rho = torch.where(norms > 0, covariance / norms.clamp_min(1e-300), torch.zeros_like(norms))
    same = (clean_ranks == adv_ranks).all(dim=1)
    rho = torch.where(same, torch.ones_like(rho), rho.clamp(-1.0, 1.0))
    return rho.to(clean_maps.dtype)
