"""decompose: known answers, invariants (hypothesis) and TFP's entropy as a reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uncertainty import Uncertainty, decompose


def test_two_one_hot_members_that_disagree_give_ln2_epistemic_and_zero_aleatoric():
    probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (S=2, B=1, K=2)
    u = decompose(probs)
    assert isinstance(u, Uncertainty)
    assert u.epistemic.item() == pytest.approx(math.log(2), abs=1e-7)
    assert u.aleatoric.item() == pytest.approx(0.0, abs=1e-12)
    assert u.total.item() == pytest.approx(math.log(2), abs=1e-7)


def test_identical_members_give_zero_epistemic(random_probs):
    one = random_probs(5, 7)
    probs = one.expand(4, 5, 7).clone()
    u = decompose(probs)
    assert torch.allclose(u.epistemic, torch.zeros(5, dtype=probs.dtype), atol=1e-12)
    assert torch.allclose(u.total, u.aleatoric, atol=1e-12)


def test_uniform_prediction_has_total_ln_k():
    k = 5
    u = decompose(torch.full((3, 2, k), 1.0 / k))
    assert torch.allclose(u.total, torch.full((2,), math.log(k)), atol=1e-6)
    assert torch.allclose(u.aleatoric, torch.full((2,), math.log(k)), atol=1e-6)


def test_shapes_and_dtype_follow_the_input(random_probs):
    for dtype in (torch.float32, torch.float64):
        u = decompose(random_probs(3, 4, 6, dtype=dtype))
        for part in u:
            assert part.shape == (4,)
            assert part.dtype == dtype


def test_total_matches_tfp_categorical_entropy(random_probs):
    import tensorflow_probability.substrates.numpy as tfp

    probs = random_probs(6, 9, 4)
    u = decompose(probs)
    mean = probs.mean(dim=0).numpy()
    reference = tfp.distributions.Categorical(probs=mean).entropy()
    np.testing.assert_allclose(u.total.numpy(), reference, rtol=1e-10, atol=1e-12)
    per_sample = tfp.distributions.Categorical(probs=probs.numpy()).entropy().mean(axis=0)
    np.testing.assert_allclose(u.aleatoric.numpy(), per_sample, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    samples=st.integers(1, 6),
    batch=st.integers(1, 8),
    classes=st.integers(2, 12),
    scale=st.floats(0.0, 20.0),
    seed=st.integers(0, 2**31 - 1),
    double=st.booleans(),
)
def test_invariants_on_random_samples(samples, batch, classes, scale, seed, double):
    dtype = torch.float64 if double else torch.float32
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(samples, batch, classes, generator=generator, dtype=dtype) * scale
    probs = logits.softmax(dim=-1)
    u = decompose(probs)
    tol = 1e-10 if double else 1e-5
    assert bool((u.epistemic >= 0).all())
    assert bool((u.aleatoric >= -tol).all())
    assert torch.allclose(u.total, u.aleatoric + u.epistemic, atol=tol)
    assert bool((u.total <= math.log(classes) + tol).all())
    # Mutual information is bounded by the entropy of a uniform choice among S samples.
    assert bool((u.epistemic <= math.log(samples) + tol).all())
    # Order of the samples does not matter.
    shuffled = decompose(probs[torch.randperm(samples, generator=generator)])
    assert torch.allclose(shuffled.epistemic, u.epistemic, atol=tol)
    if samples == 1:
        assert torch.equal(u.epistemic, torch.zeros_like(u.epistemic))


def test_gradient_flows_through_decompose():
    logits = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    u = decompose(logits.softmax(-1))
    (grad,) = torch.autograd.grad(u.epistemic.sum(), logits)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (torch.full((2, 5), 0.2), r"probs must have shape \(S, B, K\); got shape \(2, 5\)"),
        (torch.full((2, 3, 4), 0.3), r"probs must sum to 1 .* row \(0, 0\) sums to 1\.2"),
        (torch.tensor([[[0.5, float("nan")]]]), "probs must be finite; got nan"),
        (torch.tensor([[[1.5, -0.5]]]), r"probs must lie in \[0, 1\].*-0\.5"),
    ],
)
def test_bad_input_is_rejected_with_the_argument_and_the_value(probs, match):
    with pytest.raises(ValueError, match=match):
        decompose(probs)


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"probs must be a floating-point tensor.*int64"):
        decompose(torch.ones(1, 1, 1, dtype=torch.int64))


def test_slightly_negative_entries_that_validation_accepts_give_finite_values():
    # Rounding can leave entries just below 0; validation accepts down to -1e-3.
    probs = torch.tensor([[[1.0005, -0.0005, 0.0]], [[0.2, 0.3, 0.5]]], dtype=torch.float64)
    u = decompose(probs)
    for part in u:
        assert torch.isfinite(part).all()
    clamped = decompose(probs.clamp_min(0.0))
    assert torch.allclose(u.total, clamped.total) and torch.allclose(u.epistemic, clamped.epistemic)
