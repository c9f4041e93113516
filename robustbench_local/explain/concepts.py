"""Latent concept directions: what the network's penultimate layer varies along, and how much
of an attack's effect on it happens along those directions.

The directions are the top right singular vectors of clean images' penultimate activations
(the principal axes of the representation, in the spirit of Graziani et al.'s regression
concept vectors, without labelled concepts). `concept_shift` asks whether an adversarial
perturbation moves the representation along the axes clean images vary on (it changes what
the network "sees" in its own terms) or off them, into directions clean data never uses.
The images that score highest along a direction are its exemplars (MILAN's first stage).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attacks.descent import eval_mode
from robustbench_local.explain._checks import check_count, check_images, check_matrix, check_model
from robustbench_local.explain._models import capture, last_module, unwrap_for_features

# Singular values below this fraction of the largest are rank deficiency, not directions.
_RANK_TOLERANCE = 1e-10


def penultimate_features(model: nn.Module, x: Tensor, layer: nn.Module | None = None) -> Tensor:
    """Activations of the layer before the classifier head, one row per image.

    With ``layer=None`` the features are the *input* of the model's last nn.Linear (in
    `model.modules()` order): exactly what the head sees, even when the network flattens
    or pools functionally in its forward and no module outputs that tensor. With a layer,
    its output, flattened. The network runs once, in eval mode (flags restored after),
    without gradients.

    Wrappers: `uncertainty.MCDropout` is looked through, its network run with dropout off
    (the expected activations, not one noisy draw); `uncertainty.DeepEnsemble` gives its
    members' features side by side (N, D_1 + ... + D_M), or, with a layer, the member that
    holds the layer.

    Args:
        model: a classifier with an nn.Linear head (or any module when `layer` is given).
        x: (N, C, H, W) floating inputs.
        layer: a submodule whose output to take; None: the last nn.Linear's input.

    Returns:
        (N, D) features in the model's dtype, detached.

    Raises:
        ValueError: no nn.Linear (and no layer), a layer outside the model, or a layer that
            does not run exactly once on N rows.
    """
    model = check_model(model)
    x = check_images(x)
    if layer is not None and not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module or None; got {type(layer).__name__}")
    parts = []
    with torch.no_grad(), eval_mode(model):
        for network in unwrap_for_features(model, layer):
            if layer is not None:
                parts.append(capture(network, layer, x, inputs=False))
                continue
            head = last_module(network, nn.Linear)
            if head is None:
                raise ValueError(
                    f"penultimate_features needs an nn.Linear head to find the penultimate "
                    f"layer, but {type(network).__name__} has none; pass layer= (the module "
                    "whose output to use)"
                )
            parts.append(capture(network, head, x, inputs=True))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _flip_signs(directions: Tensor, projections: Tensor) -> Tensor:
    """Each direction's sign fixed so the image furthest along its axis lies on the positive
    side (sklearn's svd_flip, u-based): SVD's signs are arbitrary, and "top-activating"
    exemplars need the distinctive end of the axis to be the top."""
    extreme = projections.abs().argmax(dim=0)
    signs = torch.sign(projections[extreme, torch.arange(projections.shape[1])])
    signs[signs == 0] = 1.0
    return directions * signs[:, None]


def concept_directions(features: Tensor, k: int = 8) -> Tensor:
    """The top-k right singular vectors of the centred features: the principal axes.

    Centred (each feature's mean over the N images subtracted) because penultimate
    activations are mostly ReLU outputs, all >= 0: uncentred, the first direction would be
    the mean activation ("the network is on"), not an axis along which images differ.
    `concept_shift` measures differences of features, which centring does not change.

    Args:
        features: (N, D) clean images' features (`penultimate_features`), N >= 2.
        k: how many directions, 1 <= k <= min(N - 1, D) (N images span at most N - 1
            directions once centred).

    Returns:
        (k, D) orthonormal rows, by decreasing singular value, in features' dtype; each
        row's sign puts its most extreme image on the positive side.
    """
    features = check_matrix("features", features)
    k = check_count("k", k)
    rows, dims = features.shape
    if k > min(rows - 1, dims):
        raise ValueError(
            f"k must be at most min(N - 1, D) = {min(rows - 1, dims)} for features of shape "
            f"({rows}, {dims}); got {k}"
        )
    data = features.detach().to(torch.float64)
    centred = data - data.mean(dim=0, keepdim=True)
    # float64: the small trailing singular values of a few hundred images decide the
    # order of nearly equal axes; float32 SVD can swap them between machines.
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    directions = vh[:k]
    directions = _flip_signs(directions, centred @ directions.T)
    return directions.to(features.dtype)


def _span_basis(directions: Tensor) -> Tensor:
    """An orthonormal (r, D) basis of the rows' span (r <= k), whatever the rows were."""
    _, singular, vh = torch.linalg.svd(directions.to(torch.float64), full_matrices=False)
    keep = singular > _RANK_TOLERANCE * singular.max().clamp_min(1e-300)
    return vh[keep]


def concept_shift(clean_feats: Tensor, adv_feats: Tensor, directions: Tensor) -> Tensor:
    """Per image, the fraction of ||adv - clean||^2 that lies in the span of the directions.

    1 means the perturbation moved the representation only along the concept axes, 0 only
    orthogonally to them. The directions need not be orthonormal: their span is used. A
    row whose features did not move gives 0 (no shift, so none of it is along the axes; a
    NaN would poison a mean). Averaging the rows weighs each image alike; the pooled
    fraction (sums over images before dividing) would weigh large shifts more.

    Args:
        clean_feats: (B, D) features of the clean images.
        adv_feats: (B, D) features of the adversarial (or noisy) images, same rows.
        directions: (k, D), e.g. `concept_directions` of clean test images.

    Returns:
        (B,) fractions in [0, 1], in clean_feats' dtype (computed in float64).
    """
    clean_feats = check_matrix("clean_feats", clean_feats)
    adv_feats = check_matrix("adv_feats", adv_feats)
    directions = check_matrix("directions", directions)
    if adv_feats.shape != clean_feats.shape:
        raise ValueError(
            f"adv_feats must have clean_feats' shape {tuple(clean_feats.shape)}; "
            f"got {tuple(adv_feats.shape)}"
        )
    if directions.shape[1] != clean_feats.shape[1]:
        raise ValueError(
            f"directions must have D = {clean_feats.shape[1]} columns to match the features; "
            f"got shape {tuple(directions.shape)}"
        )
    basis = _span_basis(directions.detach()).to(clean_feats.device)
    shift = adv_feats.detach().to(torch.float64) - clean_feats.detach().to(torch.float64)
    total = shift.pow(2).sum(dim=1)
    along = (shift @ basis.T).pow(2).sum(dim=1)
    fraction = torch.where(total > 0, along / total.clamp_min(1e-300), torch.zeros_like(total))
    return fraction.clamp(0.0, 1.0).to(clean_feats.dtype)


def top_exemplars(features: Tensor, directions: Tensor, n: int = 8) -> Tensor:
    """For each direction, the n images that score highest along it.

    The score is the projection ``features @ direction``; centring would shift every score
    of a direction alike, so it changes no ranking. Ties keep the lower index first.

    Args:
        features: (N, D) the images' features.
        directions: (k, D) e.g. `concept_directions` (whose signs put the extreme end first).
        n: exemplars per direction, 1 <= n <= N.

    Returns:
        (k, n) int64 row indices into features, best first.
    """
    features = check_matrix("features", features)
    directions = check_matrix("directions", directions)
    n = check_count("n", n)
    if directions.shape[1] != features.shape[1]:
        raise ValueError(
            f"directions must have D = {features.shape[1]} columns to match the features; "
            f"got shape {tuple(directions.shape)}"
        )
    if n > features.shape[0]:
        raise ValueError(f"n must be at most N = {features.shape[0]} images; got {n}")
    scores = features.detach().to(torch.float64) @ directions.detach().to(torch.float64).T
    order = torch.sort(scores.T, dim=1, descending=True, stable=True).indices
    return order[:, :n]
