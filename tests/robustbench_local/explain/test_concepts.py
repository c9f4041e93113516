"""penultimate_features, concept_directions, concept_shift and top_exemplars: known answers
and the wrappers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.explain import (
    concept_directions,
    concept_shift,
    penultimate_features,
    top_exemplars,
)
from tests.attacks.models import DigitsCNN, Untouched, in_mixed_mode, tiny_net
from tests.robustbench_local.explain.models import smooth_net
from uncertainty import DeepEnsemble, MCDropout


def _features(n: int = 40, d: int = 6, seed: int = 0) -> torch.Tensor:
    """N points spread mostly along e0 (scale 5), then e1 (scale 2), little elsewhere."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.tensor([5.0, 2.0] + [0.1] * (d - 2), dtype=torch.float64)
    return 3.0 + torch.randn(n, d, generator=generator, dtype=torch.float64) * scales


# --- directions ----------------------------------------------------------------------------


def test_directions_are_the_principal_axes_orthonormal() -> None:
    features = _features()
    directions = concept_directions(features, k=3)
    assert directions.shape == (3, 6) and directions.dtype == features.dtype
    torch.testing.assert_close(directions @ directions.T, torch.eye(3, dtype=torch.float64))
    # Centred: the constant offset 3.0 does not make an axis; e0 then e1 lead.
    assert float(directions[0, 0].abs()) > 0.99 and float(directions[1, 1].abs()) > 0.99
    centred = features - features.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    torch.testing.assert_close(
        (directions * vh[:3]).sum(1).abs(), torch.ones(3, dtype=torch.float64)
    )


def test_directions_point_at_their_most_extreme_image() -> None:
    features = _features()
    directions = concept_directions(features, k=2)
    projections = (features - features.mean(0)) @ directions.T
    extreme = projections.abs().argmax(dim=0)
    assert bool((projections[extreme, torch.arange(2)] > 0).all())
    flipped = concept_directions(-features, k=2)  # the same axes, each pointing its own way
    torch.testing.assert_close(
        (flipped * directions).sum(1).abs(), torch.ones(2, dtype=torch.float64)
    )


def test_too_many_directions_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"k must be at most min\(N - 1, D\) = 4.*got 5"):
        concept_directions(_features(n=5, d=6), k=5)
    with pytest.raises(TypeError, match=r"k must be an int >= 1; got 2\.0"):
        concept_directions(_features(), k=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"features must have shape \(N, D\)"):
        concept_directions(torch.zeros(4), k=1)


# --- shift ---------------------------------------------------------------------------------


def test_shift_along_a_direction_is_one_and_orthogonal_is_zero() -> None:
    directions = concept_directions(_features(), k=2)
    clean = _features(n=4, seed=1)
    basis = torch.linalg.svd(directions.T, full_matrices=True).U  # (6, 6): span first
    along = clean + 0.7 * directions[0] - 0.2 * directions[1]
    across = clean + 0.5 * basis[:, 3] + 0.1 * basis[:, 5]
    torch.testing.assert_close(
        concept_shift(clean, along, directions), torch.ones(4, dtype=torch.float64)
    )
    torch.testing.assert_close(
        concept_shift(clean, across, directions),
        torch.zeros(4, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )
    # 3 along, 4 across: 9 / 25 of the squared norm lies in the span.
    mixed = clean + 3.0 * directions[1] + 4.0 * basis[:, 4]
    torch.testing.assert_close(
        concept_shift(clean, mixed, directions), torch.full((4,), 9 / 25, dtype=torch.float64)
    )


def test_shift_uses_the_span_and_lies_in_the_unit_interval() -> None:
    directions = concept_directions(_features(), k=3)
    mixing = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 3.0]], dtype=torch.float64)
    clean, adv = _features(n=20, seed=2), _features(n=20, seed=3)
    shift = concept_shift(clean, adv, directions)
    assert bool((shift >= 0).all() and (shift <= 1).all())
    torch.testing.assert_close(concept_shift(clean, adv, mixing @ directions), shift)
    # A repeated direction adds nothing to the span.
    repeated = torch.cat([directions, directions[:1]])
    torch.testing.assert_close(concept_shift(clean, adv, repeated), shift)


def test_no_shift_gives_zero() -> None:
    directions = concept_directions(_features(), k=2)
    clean = _features(n=3, seed=4).float()
    shift = concept_shift(clean, clean.clone(), directions.float())
    assert torch.equal(shift, torch.zeros(3))


def test_shift_arguments_are_checked() -> None:
    directions = concept_directions(_features(), k=2)
    clean = _features(n=3)
    with pytest.raises(ValueError, match=r"adv_feats must have clean_feats' shape \(3, 6\)"):
        concept_shift(clean, clean[:2], directions)
    with pytest.raises(ValueError, match=r"directions must have D = 6 columns.*\(2, 5\)"):
        concept_shift(clean, clean, directions[:, :5])


# --- exemplars -----------------------------------------------------------------------------


def test_top_exemplars_rank_the_images_along_each_direction() -> None:
    features = torch.tensor(
        [[0.0, 1.0], [5.0, 0.0], [3.0, -2.0], [1.0, 4.0], [-6.0, 2.0]], dtype=torch.float64
    )
    directions = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert torch.equal(
        top_exemplars(features, directions, n=3), torch.tensor([[1, 2, 3], [3, 4, 0]])
    )
    # Ties keep the lower index first.
    tied = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    assert torch.equal(top_exemplars(tied, directions[:1], n=3), torch.tensor([[2, 0, 1]]))
    with pytest.raises(ValueError, match=r"n must be at most N = 5 images; got 6"):
        top_exemplars(features, directions, n=6)


# --- features ------------------------------------------------------------------------------


def test_penultimate_features_are_what_the_head_sees() -> None:
    torch.manual_seed(0)
    model = DigitsCNN()
    x = torch.rand(5, 1, 8, 8)
    features = penultimate_features(model, x)
    with torch.no_grad():
        expected = model.features(x).flatten(1)  # flattened in forward: no module outputs it
    assert torch.equal(features, expected)
    after_relu = penultimate_features(model, x, layer=model.features[3])
    assert after_relu.shape == (5, 32 * 8 * 8)


def test_features_leave_the_model_as_it_was() -> None:
    net = in_mixed_mode(tiny_net(1, 8, 4, torch.float64))
    untouched = Untouched(net)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    first = penultimate_features(net, x)
    untouched.check()
    net.eval()
    assert torch.equal(first, penultimate_features(net, x))  # eval mode: dropout off


def test_features_of_the_wrappers() -> None:
    nets = [smooth_net(seed, dropout=0.5) for seed in range(2)]
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    own = [penultimate_features(net, x) for net in nets]
    ensemble = DeepEnsemble(nets)
    assert torch.equal(penultimate_features(ensemble, x), torch.cat(own, dim=1))
    at_conv = penultimate_features(ensemble, x, layer=nets[1].conv)  # only member 1 runs
    with torch.no_grad():
        assert torch.equal(at_conv, nets[1].conv(x).flatten(1))
    mc = MCDropout(nets[0], samples=7)
    assert torch.equal(penultimate_features(mc, x), own[0])  # dropout off, no sample rows


def test_feature_errors_are_named() -> None:
    x = torch.rand(2, 1, 8, 8)
    conv_only = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"needs an nn\.Linear head.*Sequential has none.*layer="):
        penultimate_features(conv_only, x)
    with pytest.raises(ValueError, match=r"layer must be a submodule of the model"):
        penultimate_features(DigitsCNN(), x, layer=nn.Linear(2, 2))
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Flatten(), shared, nn.Linear(64, 8), shared, nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"layer ReLU must run exactly once.*ran 2 times"):
        penultimate_features(twice, x, layer=shared)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        penultimate_features(DigitsCNN(), x.numpy())  # type: ignore[arg-type]
