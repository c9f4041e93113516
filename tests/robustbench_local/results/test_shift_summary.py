"""The summary's distribution-shift rows on crafted stores: order, means and mCE."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from robustbench_local.results.records import ShiftRow
from robustbench_local.results.schema import SHIFT_SAMPLE_COLUMNS
from robustbench_local.results.store import ResultsStore, ShiftKey
from robustbench_local.results.summary import mce_baseline, shift_summary, summarize

# Top-1 error per corruption and severity 1..3. "half" makes half the baseline's errors
# everywhere (mCE 0.5); "mixed" twice them on contrast and the same on noise (mCE 1.5).
ERRORS = {
    "zeta-base": {"gaussian_noise": (0.2, 0.4, 0.6), "contrast": (0.1, 0.2, 0.3)},
    "alpha-half": {"gaussian_noise": (0.1, 0.2, 0.3), "contrast": (0.05, 0.1, 0.15)},
    "mixed": {"gaussian_noise": (0.2, 0.4, 0.6), "contrast": (0.2, 0.4, 0.6)},
}
CONFIG = {
    "run": {"name": "shifted"},
    # Config order, not alphabetical: the first model is the mCE baseline.
    "models": [{"name": "zeta-base"}, {"name": "alpha-half"}, {"name": "mixed"}],
    "shift": {
        "corruptions": ["gaussian_noise", "contrast"],
        "severities": [1, 2, 3],
        "ood": ["uniform", "blobs"],
    },
}


def _samples(n: int = 4) -> dict[str, np.ndarray]:
    return {"idx": np.arange(n)} | {c: np.zeros(n, np.int64) for c in SHIFT_SAMPLE_COLUMNS}


def _store(path: Path, errors: dict = ERRORS, skip: frozenset = frozenset()) -> ResultsStore:
    store = ResultsStore(path)
    store.set_meta("config", CONFIG)
    for model, by_corruption in errors.items():
        for corruption, per_severity in by_corruption.items():
            for severity, error in enumerate(per_severity, start=1):
                key = ShiftKey(model, "corruption", corruption, severity)
                if key not in skip:
                    metrics = {"accuracy": 1 - error, "ece": error / 2, "n": 4.0}
                    store.write_shift_job(key, metrics, _samples())
        for ood in ("blobs", "uniform"):
            store.write_shift_job(ShiftKey(model, "ood", ood), {"auroc_total": 0.7}, _samples())
    return store


def test_rows_come_in_config_order(tmp_path: Path) -> None:
    with _store(tmp_path / "results.sqlite") as store:
        summary = summarize(store)
    assert [(r.model, r.corruption, r.severity) for r in summary.shift[:7]] == [
        ("zeta-base", "gaussian_noise", 1),
        ("zeta-base", "gaussian_noise", 2),
        ("zeta-base", "gaussian_noise", 3),
        ("zeta-base", "contrast", 1),
        ("zeta-base", "contrast", 2),
        ("zeta-base", "contrast", 3),
        ("alpha-half", "gaussian_noise", 1),
    ]
    assert len(summary.shift) == 18 and summary.results == ()
    assert [(r.model, r.ood) for r in summary.ood[:3]] == [
        ("zeta-base", "uniform"),
        ("zeta-base", "blobs"),
        ("alpha-half", "uniform"),
    ]
    assert summary.ood[0].metric("auroc_total") == 0.7


def test_mce_is_relative_to_the_first_model(tmp_path: Path) -> None:
    with _store(tmp_path / "results.sqlite") as store:
        summary = summarize(store)
    rows = {r.model: r for r in summary.shift_summary}
    assert [r.model for r in summary.shift_summary] == ["zeta-base", "alpha-half", "mixed"]
    assert rows["zeta-base"].mce == pytest.approx(1.0)
    assert rows["alpha-half"].mce == pytest.approx(0.5)
    assert rows["mixed"].mce == pytest.approx((2.0 + 1.0) / 2)
    # Plain means over the model's six (corruption, severity) jobs.
    base_errors = [0.2, 0.4, 0.6, 0.1, 0.2, 0.3]
    assert rows["zeta-base"].mean_corruption_accuracy == pytest.approx(1 - np.mean(base_errors))
    assert rows["zeta-base"].mean_shift_ece == pytest.approx(np.mean(base_errors) / 2)


def test_a_run_in_progress_compares_like_with_like(tmp_path: Path) -> None:
    # mixed has no contrast at severity 3 yet: its contrast ratio uses severities 1 and 2.
    skip = frozenset({ShiftKey("mixed", "corruption", "contrast", 3)})
    with _store(tmp_path / "results.sqlite", skip=skip) as store:
        summary = summarize(store)
    mixed = next(r for r in summary.shift_summary if r.model == "mixed")
    assert mixed.mce == pytest.approx(((0.2 + 0.4) / (0.1 + 0.2) + 1.0) / 2)


def test_a_baseline_without_errors_leaves_mce_undefined() -> None:
    rows = [
        ShiftRow("base", "contrast", 1, {"accuracy": 1.0}),
        ShiftRow("base", "fog", 1, {"accuracy": 0.5}),
        ShiftRow("other", "contrast", 1, {"accuracy": 0.9}),
        ShiftRow("other", "fog", 1, {"accuracy": 0.75}),
        ShiftRow("lonely", "rotate", 1, {"accuracy": 0.9}),  # nothing in common with base
    ]
    rows_out = {r.model: r for r in shift_summary(rows, "base")}
    assert math.isnan(rows_out["base"].mce) and math.isnan(rows_out["other"].mce)
    assert math.isnan(rows_out["lonely"].mce)
    assert rows_out["other"].mean_corruption_accuracy == pytest.approx(0.825)
    assert math.isnan(rows_out["other"].mean_shift_ece)  # no ECE stored
    without_contrast = [r for r in rows if r.corruption != "contrast"]
    assert {r.model: r.mce for r in shift_summary(without_contrast, "base")}["other"] == (
        pytest.approx(0.5)
    )


def test_the_baseline_is_the_configs_first_model() -> None:
    rows = [ShiftRow("b", "fog", 1), ShiftRow("a", "fog", 1)]
    assert mce_baseline(CONFIG, rows) == "zeta-base"
    assert mce_baseline({}, rows) == "b"
    assert mce_baseline({}) is None
