"""accuracy, nll, brier and the Brier decomposition against PyTorch, TFP and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from uncertainty import metrics


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def data(request, random_probs, random_labels):
    return random_probs(1000, 7, dtype=request.param), random_labels(1000, 7)


def test_accuracy_known_answer():
    probs = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    assert metrics.accuracy(probs, torch.tensor([0, 0, 0, 0])) == 0.75  # tie goes to class 0


def _rel(probs: torch.Tensor) -> float:
    # The references renormalise (softmax of log p); a float32 row sums to 1 only within ~1e-7.
    return 1e-12 if probs.dtype == torch.float64 else 1e-6


def test_nll_equals_cross_entropy(data):
    probs, y = data
    reference = F.cross_entropy(torch.log(probs.double()), y).item()
    assert metrics.nll(probs, y) == pytest.approx(reference, rel=_rel(probs))
    assert metrics.nll(probs, y) == pytest.approx(F.nll_loss(torch.log(probs.double()), y).item())


def test_brier_equals_tfp_brier_score_plus_one(data):
    import tensorflow_probability.substrates.numpy as tfp

    probs, y = data
    logits = np.log(probs.double().numpy())
    reference = float(np.mean(tfp.stats.brier_score(labels=y.numpy(), logits=logits))) + 1.0
    assert metrics.brier(probs, y) == pytest.approx(reference, rel=_rel(probs))


def test_brier_known_answers_and_range():
    y = torch.tensor([0, 1])
    assert metrics.brier(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), y) == 0.0
    assert metrics.brier(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), y) == 2.0
    assert metrics.brier(torch.tensor([[0.5, 0.5], [0.5, 0.5]]), y) == 0.5


def test_samples_are_averaged_before_scoring(random_probs, random_labels):
    samples = random_probs(5, 100, 4)
    y = random_labels(100, 4)
    mean = samples.mean(0)
    for fn in (metrics.accuracy, metrics.nll, metrics.brier):
        assert fn(samples, y) == pytest.approx(fn(mean, y), rel=1e-14)


def test_zero_probability_for_the_label_gives_a_large_finite_nll():
    value = metrics.nll(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert math.isfinite(value)
    assert value == pytest.approx(-math.log(torch.finfo(torch.float64).tiny))


def _tfp_decomposition(probs: torch.Tensor, y: torch.Tensor):
    import tensorflow_probability.substrates.numpy as tfp

    with np.errstate(divide="ignore"):
        return tfp.stats.brier_decomposition(
            labels=y.numpy(), logits=np.log(probs.double().numpy())
        )


def test_reliability_and_uncertainty_match_tfp_with_the_shift(data):
    probs, y = data
    ours = metrics.brier_decomposition(probs, y)
    unc, _, rel = _tfp_decomposition(probs, y)
    assert ours.reliability == pytest.approx(float(rel), rel=1e-9)
    assert ours.uncertainty == pytest.approx(float(unc) + 1.0, rel=1e-9)
    assert ours.reliability >= 0 and ours.resolution >= 0


def test_resolution_matches_tfp_when_labels_are_balanced(random_probs):
    # TFP's resolution broadcasts the base rate along the wrong axis; with balanced labels the
    # base rate is constant, so the two agree there (and only there).
    probs = random_probs(600, 3, seed=5)
    y = torch.arange(600) % 3
    _, res, _ = _tfp_decomposition(probs, y)
    assert metrics.brier_decomposition(probs, y).resolution == pytest.approx(float(res), rel=1e-9)


def test_tfp_resolution_differs_on_unbalanced_labels():
    """Documents why resolution is computed here: TFP 0.25 gives 0.288 where the right
    value (the one that makes the decomposition sum to the Brier score) is 0.24."""
    probs, y = _constant_per_group()
    _, res, _ = _tfp_decomposition(probs, y)
    assert float(res) == pytest.approx(0.288)
    assert metrics.brier_decomposition(probs, y).resolution == pytest.approx(0.24)


def test_uncertainty_term_is_one_minus_sum_of_squared_label_frequencies(data):
    probs, y = data
    frequencies = torch.bincount(y, minlength=7).double() / len(y)
    expected = 1.0 - float((frequencies**2).sum())
    assert metrics.brier_decomposition(probs, y).uncertainty == pytest.approx(expected, rel=1e-9)


def _constant_per_group():
    """One fixed prediction per argmax class, unbalanced labels: the decomposition is exact."""
    prototypes = torch.tensor(
        [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]], dtype=torch.float64
    )
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
    y = torch.tensor([0, 1, 0, 1, 2, 2, 2, 0, 2, 0])
    return prototypes[groups], y


def test_decomposition_sums_to_brier_when_predictions_are_constant_per_group():
    probs, y = _constant_per_group()
    parts = metrics.brier_decomposition(probs, y)
    # By hand: uncertainty 1 - (0.4^2 + 0.2^2 + 0.4^2) = 0.64, reliability 0.044.
    assert parts.uncertainty == pytest.approx(0.64)
    assert parts.reliability == pytest.approx(0.044)
    assert parts.uncertainty - parts.resolution + parts.reliability == pytest.approx(
        metrics.brier(probs, y), abs=1e-9
    )


def test_decomposition_sums_to_brier_exactly_on_random_data(data):
    probs, y = data
    parts = metrics.brier_decomposition(probs, y)
    total = parts.uncertainty - parts.resolution + parts.reliability + parts.within_group
    # TFP works on log probabilities: exact up to float rounding of that round trip.
    assert total == pytest.approx(metrics.brier(probs, y), abs=1e-7)


def test_within_group_term_does_not_vanish_with_more_samples(random_probs):
    # Grouping by argmax leaves a term that is an expectation, not an estimation error.
    terms = []
    for n in (200, 20_000):
        probs = random_probs(n, 3, seed=1)
        y = torch.multinomial(probs.double(), 1, generator=torch.Generator().manual_seed(2))[:, 0]
        terms.append(metrics.brier_decomposition(probs, y).within_group)
    assert abs(terms[1]) > 0.01 and abs(terms[0] - terms[1]) < 0.5 * abs(terms[1])


def test_within_group_term_is_zero_when_predictions_are_constant_per_group():
    probs, y = _constant_per_group()
    assert metrics.brier_decomposition(probs, y).within_group == pytest.approx(0.0, abs=1e-12)


def test_perfect_one_hot_predictions_have_zero_reliability():
    y = torch.tensor([0, 1, 2, 1])
    parts = metrics.brier_decomposition(F.one_hot(y, 3).double(), y)
    assert parts.reliability == pytest.approx(0.0, abs=1e-9)
    assert parts.resolution == pytest.approx(parts.uncertainty, abs=1e-9)
