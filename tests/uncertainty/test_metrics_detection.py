"""auroc, aupr, fpr_at_95_tpr against scikit-learn; NaN for an empty group; large scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from uncertainty import metrics


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def scored(request):
    generator = torch.Generator().manual_seed(0)
    is_positive = torch.rand(800, generator=generator) < 0.3
    scores = torch.randn(800, generator=generator, dtype=request.param) + 1.2 * is_positive
    scores[::7] = scores[::7].round()  # some ties
    return scores, is_positive


def _sklearn_fpr_at(scores, is_positive, level=0.95):
    fpr, tpr, _ = roc_curve(is_positive.numpy(), scores.numpy(), drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= level)])


def test_auroc_equals_sklearn(scored):
    scores, is_positive = scored
    expected = roc_auc_score(is_positive.numpy(), scores.numpy())
    assert metrics.auroc(scores, is_positive) == pytest.approx(expected, abs=1e-6)


def test_aupr_equals_sklearn_average_precision(scored):
    scores, is_positive = scored
    expected = average_precision_score(is_positive.numpy(), scores.numpy())
    assert metrics.aupr(scores, is_positive) == pytest.approx(expected, abs=1e-6)


def test_fpr_at_95_tpr_equals_the_sklearn_roc(scored):
    scores, is_positive = scored
    expected = _sklearn_fpr_at(scores, is_positive)
    assert metrics.fpr_at_95_tpr(scores, is_positive) == pytest.approx(expected, abs=1e-6)
    assert metrics.fpr_at_tpr(scores, is_positive, 0.5) == pytest.approx(
        _sklearn_fpr_at(scores, is_positive, 0.5), abs=1e-6
    )


def test_known_answers():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    is_positive = torch.tensor([0, 0, 1, 1])
    assert metrics.auroc(scores, is_positive) == pytest.approx(0.75)
    assert metrics.auroc(torch.tensor([1.0, 2.0]), torch.tensor([False, True])) == 1.0
    assert metrics.auroc(torch.tensor([1.0, 1.0]), torch.tensor([False, True])) == 0.5
    # Perfect separation: 95% TPR at no false positive.
    assert metrics.fpr_at_95_tpr(torch.arange(20.0), torch.arange(20) >= 10) == 0.0
    # Positive at the bottom: reaching any TPR takes every negative.
    assert metrics.fpr_at_95_tpr(torch.arange(20.0), torch.arange(20) == 0) == 1.0


def test_large_scores_are_not_squashed_into_ties():
    # torchmetrics would sigmoid these (outside [0, 1]) and in float32 they would all be 1.0.
    scores = torch.tensor([30.0, 40.0, 50.0, 60.0])
    is_positive = torch.tensor([False, False, True, True])
    assert metrics.auroc(scores, is_positive) == 1.0
    assert metrics.aupr(scores, is_positive) == 1.0
    assert metrics.fpr_at_95_tpr(scores, is_positive) == 0.0
    assert metrics.auroc(-scores, is_positive) == 0.0


def test_integer_and_infinite_scores():
    assert metrics.auroc(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, 1])) == 1.0
    scores = torch.tensor([-math.inf, 0.0, math.inf, 1.0])
    assert metrics.auroc(scores, torch.tensor([0, 0, 1, 1])) == 1.0


@pytest.mark.parametrize("fn", [metrics.auroc, metrics.aupr, metrics.fpr_at_95_tpr])
@pytest.mark.parametrize("group", [True, False])
def test_an_empty_group_gives_nan(fn, group):
    value = fn(torch.tensor([0.1, 0.2, 0.3]), torch.full((3,), group))
    assert math.isnan(value)


def test_bad_inputs():
    with pytest.raises(ValueError, match="scores must not hold NaN; got NaN at index 1"):
        metrics.auroc(torch.tensor([0.1, float("nan")]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"is_positive must have shape \(2,\)"):
        metrics.auroc(torch.tensor([0.1, 0.2]), torch.tensor([True]))
    with pytest.raises(ValueError, match=r"scores must have shape \(N,\) with N >= 1"):
        metrics.aupr(torch.zeros(2, 2), torch.tensor([True, False]))
    with pytest.raises(TypeError, match="is_positive must be a bool"):
        metrics.auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="tpr must be a number in"):
        metrics.fpr_at_tpr(torch.tensor([0.1, 0.2]), torch.tensor([True, False]), tpr=1.5)
