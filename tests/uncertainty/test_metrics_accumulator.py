"""MetricAccumulator: streaming equals the functions on the concatenated data."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from uncertainty import metrics


def _functions(probs, y, n_bins):
    return {
        "accuracy": metrics.accuracy(probs, y),
        "nll": metrics.nll(probs, y),
        "brier": metrics.brier(probs, y),
        "ece": metrics.ece(probs, y, n_bins=n_bins),
        "mce": metrics.mce(probs, y, n_bins=n_bins),
    }


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    classes=st.integers(2, 8),
    samples=st.integers(0, 3),
    n_bins=st.integers(1, 20),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    seed=st.integers(0, 2**31 - 1),
    double=st.booleans(),
)
def test_streaming_equals_the_functions_on_concatenated_data(
    n, classes, samples, n_bins, cuts, seed, double
):
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    shape = (samples, n, classes) if samples else (n, classes)
    probs = (torch.randn(*shape, generator=generator, dtype=dtype) * 3).softmax(-1)
    y = torch.randint(0, classes, (n,), generator=generator)
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    accumulator = metrics.MetricAccumulator(classes, n_bins=n_bins)
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            accumulator.update(probs[..., start:stop, :], y[start:stop])
    streamed = accumulator.compute()
    expected = _functions(probs, y, n_bins)
    assert streamed["count"] == n
    assert streamed["accuracy"] == expected["accuracy"]  # integer counts: exact
    for name in ("nll", "brier", "ece", "mce"):
        # Only the float64 summation order differs.
        assert streamed[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name


def test_one_batch_is_bit_identical_to_the_functions(random_probs, random_labels):
    probs = random_probs(4, 500, 6)
    y = random_labels(500, 6)
    accumulator = metrics.MetricAccumulator(6)
    accumulator.update(probs, y)
    streamed = accumulator.compute()
    for name, value in _functions(probs, y, 15).items():
        assert streamed[name] == value, name


def test_reset_forgets_and_compute_needs_data(random_probs, random_labels):
    accumulator = metrics.MetricAccumulator(4)
    with pytest.raises(ValueError, match="needs at least one update"):
        accumulator.compute()
    accumulator.update(random_probs(10, 4), random_labels(10, 4))
    accumulator.reset()
    assert accumulator.count == 0
    accumulator.update(random_probs(5, 4, seed=3), random_labels(5, 4, seed=4))
    assert accumulator.compute()["count"] == 5


def test_wrong_number_of_classes_and_bad_arguments(random_probs, random_labels):
    accumulator = metrics.MetricAccumulator(4)
    with pytest.raises(ValueError, match="num_classes=4 entries in its last dim; got 5"):
        accumulator.update(random_probs(3, 5), random_labels(3, 5))
    with pytest.raises(ValueError, match="n_bins must be an int >= 1; got 0"):
        metrics.MetricAccumulator(4, n_bins=0)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1; got 0"):
        metrics.MetricAccumulator(0)
