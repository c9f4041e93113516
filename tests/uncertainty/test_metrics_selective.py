"""risk_coverage and aurc: known answers, ties, both input forms."""

from __future__ import annotations

import pytest
import torch

from uncertainty import metrics


def test_known_curve_and_area():
    confidence = torch.tensor([0.9, 0.8, 0.7, 0.6], dtype=torch.float64)
    correct = torch.tensor([True, True, False, False])
    curve = metrics.risk_coverage(confidence, correct)
    torch.testing.assert_close(
        curve.coverage, torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(
        curve.risk, torch.tensor([0.0, 0.0, 1 / 3, 0.5], dtype=torch.float64)
    )
    assert metrics.aurc(confidence, correct) == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)


def test_order_of_the_input_does_not_matter():
    confidence = torch.tensor([0.6, 0.9, 0.7, 0.8], dtype=torch.float64)
    correct = torch.tensor([False, True, False, True])
    assert metrics.aurc(confidence, correct) == pytest.approx((0 + 0 + 1 / 3 + 1 / 2) / 4)


def test_ties_enter_together():
    confidence = torch.tensor([0.9, 0.9, 0.5, 0.5], dtype=torch.float64)
    for correct in ([True, False, True, True], [False, True, True, True]):
        curve = metrics.risk_coverage(confidence, torch.tensor(correct))
        torch.testing.assert_close(curve.coverage, torch.tensor([0.5, 1.0], dtype=torch.float64))
        torch.testing.assert_close(curve.risk, torch.tensor([0.5, 0.25], dtype=torch.float64))
        assert metrics.aurc(confidence, torch.tensor(correct)) == pytest.approx(
            0.5 * 0.5 + 0.5 * 0.25
        )


def test_perfect_and_worst_rankings():
    confidence = torch.linspace(1.0, 0.1, 10, dtype=torch.float64)
    good_first = torch.arange(10) < 7
    assert metrics.aurc(confidence, good_first) < metrics.aurc(confidence, ~good_first)
    assert metrics.aurc(confidence, torch.ones(10, dtype=torch.bool)) == 0.0
    assert metrics.aurc(confidence, torch.zeros(10, dtype=torch.bool)) == 1.0


def test_probabilities_and_labels_give_the_same_curve(random_probs, random_labels):
    samples = random_probs(3, 200, 5)
    y = random_labels(200, 5)
    confidence, correct = metrics.confidence_and_correct(samples, y)
    from_probs = metrics.risk_coverage(samples, y)
    from_stored = metrics.risk_coverage(confidence.tolist(), correct.int().tolist())
    torch.testing.assert_close(from_probs.coverage, from_stored.coverage)
    torch.testing.assert_close(from_probs.risk, from_stored.risk)
    assert metrics.aurc(samples, y) == metrics.aurc(confidence, correct)
    assert from_probs.risk[-1].item() == pytest.approx(1 - metrics.accuracy(samples, y))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        metrics.aurc(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"prediction must lie in \[0, 1\]; got 1.5 at index 1"):
        metrics.aurc(torch.tensor([0.1, 1.5]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"target must hold only 0 and 1 \(or be bool\); got 2"):
        metrics.risk_coverage(torch.tensor([0.1, 0.5]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"prediction must be confidences \(N,\).*got shape"):
        metrics.aurc(torch.zeros(1, 1, 1, 1), torch.tensor([0]))
