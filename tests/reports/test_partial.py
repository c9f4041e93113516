"""Runs that are partial or unusual still get a report; what cannot be drawn says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import build_report
from robustbench_local.results.records import Summary
from robustbench_local.results.store import JobKey, ResultsStore
from tests.reports.conftest import MODELS, ModelKind, write_run

FIGURE_IDS = {
    "accuracy_vs_eps",
    "confidence_vs_accuracy",
    "uncertainty_vs_eps",
    "detection_auroc_vs_eps",
    "reliability",
    "risk_coverage",
    "examples",
}
ATTACKED = {"detection_auroc_vs_eps", "reliability", "risk_coverage", "examples"}

DOLLAR = ModelKind("cost $5 $x^2$ \\frac", 0.9, 3.0, 0.8, 0.2)  # mathtext must stay text
CASES = {
    # name: (write_run keyword arguments, the figures expected to be "Not drawn")
    "only eps 0": ({"eps": (0.0,)}, ATTACKED),
    "one attack, one eps, a $ in a name": (
        {"models": (MODELS[0], DOLLAR), "attacks": ("pgd",), "eps": (0.3,)},
        set(),
    ),
    "no stochastic model, NaN AUROCs, no examples": (
        {
            "models": MODELS[:2],
            "eps": (0.0, 0.05),
            "examples": 0,
            "nan_metrics": (
                *(
                    f"auroc_{score}{suffix}"
                    for score in ("confidence", "total", "epistemic")
                    for suffix in ("", "_successful", "_noise")
                ),
                "ece",
            ),
        },
        {"detection_auroc_vs_eps", "examples"},
    ),
    "no job yet": ({"models": (), "complete": False}, FIGURE_IDS),
}


def _check(run_dir: Path, summary: Summary, not_drawn: set[str]) -> dict[str, str]:
    # strict JSON: NaN became null
    text = (run_dir / "summary.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))
    captions = {f.id: f.caption for f in summary.figures}
    assert set(captions) == FIGURE_IDS
    for figure in summary.figures:
        assert (run_dir / figure.path).stat().st_size > 0
        assert "could not draw" not in figure.caption, figure.caption  # no crash inside
    assert {i for i, c in captions.items() if c.startswith("Not drawn:")} == not_drawn
    return captions


@pytest.mark.parametrize("case", list(CASES))
def test_a_partial_run_gets_a_report(case: str, tmp_path: Path) -> None:
    options, not_drawn = CASES[case]
    run_dir = write_run(tmp_path / "run", n=40, **options)
    summary = build_report(run_dir)
    _check(run_dir, summary, not_drawn)
    assert "Robustness report" in (run_dir / "report.html").read_text()


def test_a_run_in_progress_gets_a_report_while_its_store_is_written(tmp_path: Path) -> None:
    skip = {JobKey(MODELS[2].name, "pgd", e) for e in (0.0, 0.1)} | {
        JobKey("standard", "fgsm", 0.1)
    }
    run_dir = write_run(
        tmp_path / "run", n=40, eps=(0.0, 0.1), complete=False, skip=frozenset(skip)
    )
    with ResultsStore(run_dir / "results.sqlite") as writer:  # the runner holds it open
        writer.set_meta("complete", False)
        summary = build_report(run_dir)
    captions = _check(run_dir, summary, set())
    assert len(summary.results) == 9
    # the ensemble has only fgsm at 0.1, so that is its strongest attack there
    assert (
        "under fgsm at eps 0.1 the <script>alert(1)</script> model"
        in (captions["confidence_vs_accuracy"])
    )
    assert "in progress: 9 of 12 jobs stored" in (run_dir / "report.html").read_text()


def test_no_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no results store"):
        build_report(tmp_path)
