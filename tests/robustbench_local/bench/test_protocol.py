"""The detection protocol on per-sample columns whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustbench_local.bench.protocol import MIN_DETECTION_GROUP, detection_metrics


def _columns(n: int, fooled: int) -> dict[str, np.ndarray]:
    """n correctly classified clean inputs; the first ``fooled`` are attacked successfully.

    Every score is low on clean inputs and on the noise control and high on attacked
    ones: it separates attacks perfectly and noise not at all.
    """
    label = np.zeros(n, dtype=np.int64)
    adv_pred = label.copy()
    adv_pred[:fooled] = 1
    columns = {"label": label, "clean_pred": label.copy(), "adv_pred": adv_pred}
    for prefix, epistemic, confidence in (
        ("clean", 0.0, 0.99),
        ("adv", 1.0, 0.6),
        ("noise", 0.0, 0.99),
    ):
        columns[f"{prefix}_epistemic"] = np.full(n, epistemic)
        columns[f"{prefix}_total"] = np.full(n, epistemic)
        columns[f"{prefix}_confidence"] = np.full(n, confidence)
    return columns


def test_a_perfect_score_separates_attacks_and_not_noise() -> None:
    result = detection_metrics(_columns(n=40, fooled=20))

    assert result["n_successful"] == 20
    for score in ("confidence", "total", "epistemic"):
        assert result[f"auroc_{score}"] == pytest.approx(1.0)
        assert result[f"auroc_{score}_successful"] == pytest.approx(1.0)
        # Noise identical to clean: every pair ties, the AUROC of a coin.
        assert result[f"auroc_{score}_noise"] == pytest.approx(0.5)


@pytest.mark.parametrize("fooled", [0, 1, MIN_DETECTION_GROUP - 1])
def test_too_few_successful_attacks_give_nan_not_a_lucky_number(fooled: int) -> None:
    result = detection_metrics(_columns(n=100, fooled=fooled))

    assert result["n_successful"] == fooled
    assert math.isnan(result["auroc_epistemic_successful"])
    assert math.isnan(result["aupr_epistemic_successful"])
    # All 100 attacked inputs still form a group large enough to report.
    assert result["auroc_epistemic"] == pytest.approx(1.0)


def test_the_smallest_reported_group_is_reported() -> None:
    result = detection_metrics(_columns(n=100, fooled=MIN_DETECTION_GROUP))

    assert result["auroc_epistemic_successful"] == pytest.approx(1.0)
