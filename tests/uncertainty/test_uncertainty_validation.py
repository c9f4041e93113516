"""Bad input to every metric: ValueError / TypeError naming the argument and the value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uncertainty import metrics

PROBS = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
Y = torch.tensor([0, 1, 2, 1])
# (function, name of its prediction argument, name of its target argument)
PROB_METRICS = [
    (metrics.accuracy, "probs", "y"),
    (metrics.nll, "probs", "y"),
    (metrics.brier, "probs", "y"),
    (metrics.brier_decomposition, "probs", "y"),
    (metrics.ece, "probs", "y"),
    (metrics.mce, "probs", "y"),
    (metrics.adaptive_ece, "probs", "y"),
    (metrics.confidence_and_correct, "probs", "y"),
    (metrics.aurc, "prediction", "target"),
    (metrics.risk_coverage, "prediction", "target"),
]


def _with(row: int, values: list[float]) -> torch.Tensor:
    probs = PROBS.clone()
    probs[row] = torch.tensor(values)
    return probs


@pytest.mark.parametrize(
    ("fn", "pred", "target"), PROB_METRICS, ids=lambda v: getattr(v, "__name__", "")
)
@pytest.mark.parametrize(
    ("probs", "y", "error", "match"),
    [
        (
            _with(3, [0.5, 0.2, 0.12]),
            Y,
            ValueError,
            r"{pred} must sum to 1 over the last dim \(tolerance 0.001\); row 3 sums to 0.82",
        ),
        (
            _with(1, [0.5, float("nan"), 0.5]),
            Y,
            ValueError,
            r"{pred} must be finite; got nan at index \(1, 1\)",
        ),
        (_with(0, [2.0, -0.5, -0.5]), Y, ValueError, r"{pred} must lie in \[0, 1\].*logits"),
        (
            PROBS,
            Y[:3],
            ValueError,
            r"{target} must have shape \(4,\) to match .*; got shape \(3,\)",
        ),
        (
            PROBS,
            torch.tensor([0, 1, 3, 1]),
            ValueError,
            r"{target} must hold class indices in \[0, 3\); got 3",
        ),
        (
            PROBS,
            torch.tensor([0, -1, 2, 1]),
            ValueError,
            r"{target} must hold class indices in \[0, 3\); got -1",
        ),
        (
            PROBS,
            Y.float(),
            TypeError,
            "{target} must be an integer tensor of class indices; got torch.float32",
        ),
        (PROBS.long(), Y, TypeError, "{pred} must be a floating-point tensor"),
        ("probs", Y, TypeError, "{pred} must be a torch.Tensor .*; got str"),
    ],
)
def test_bad_probabilities_and_labels(fn, pred, target, probs, y, error, match):
    with pytest.raises(error, match=match.format(pred=pred, target=target)):
        fn(probs, y)


@pytest.mark.parametrize(
    "fn", [fn for fn, pred, _ in PROB_METRICS if pred == "probs"], ids=lambda f: f.__name__
)
def test_probs_without_a_class_dim_are_rejected(fn):
    with pytest.raises(
        ValueError, match=r"probs must have shape \(B, K\) or \(S, B, K\); got shape \(3,\)"
    ):
        fn(PROBS[0], Y)


@pytest.mark.parametrize("fn", [metrics.ece, metrics.mce, metrics.adaptive_ece])
def test_n_bins_below_one(fn):
    with pytest.raises(ValueError, match="n_bins must be an int >= 1; got 0"):
        fn(PROBS, Y, n_bins=0)
    with pytest.raises(TypeError, match=r"n_bins must be an int >= 1; got 2.5 \(float\)"):
        fn(PROBS, Y, n_bins=2.5)


def test_samples_and_numpy_inputs_are_accepted():
    samples = torch.stack([PROBS, PROBS.roll(1, dims=-1)])
    assert metrics.nll(samples, Y) == pytest.approx(metrics.nll(samples.mean(0), Y))
    assert metrics.nll(PROBS.numpy(), Y.numpy()) == pytest.approx(metrics.nll(PROBS, Y))
    assert metrics.ece(PROBS.numpy().astype(np.float64), Y.tolist()) == pytest.approx(
        metrics.ece(PROBS, Y)
    )


def test_small_deviation_within_tolerance_is_accepted():
    probs = PROBS.double() * (1 + 5e-4)
    assert 0 <= metrics.brier(probs, Y) <= 2


def test_sample_dimension_mismatch_reports_the_sample_row():
    samples = torch.stack([PROBS, PROBS])
    samples[1, 2] = torch.tensor([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"row \(1, 2\) sums to 1.5"):
        metrics.ece(samples, Y)
