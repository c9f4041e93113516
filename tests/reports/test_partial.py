"""Runs that are partial or unusual still get a report; what cannot be drawn says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports import build_report
from robustbench_local.results.records import Summary
from robustbench_local.results.store import JobKey, ResultsStore, ShiftKey
from tests.reports.conftest import FIGURE_IDS, MODELS, ModelKind, write_run

ATTACKED = {"detection_auroc_vs_eps", "reliability", "risk_coverage", "examples", "attributions"}
EXPLAINED = {"attributions", "concepts"}
CORRUPTED = {"accuracy_vs_severity", "calibration_under_shift"}
SHIFTED = CORRUPTED | {"ood_detection"}

DOLLAR = ModelKind("cost $5 $x^2$ \\frac", 0.9, 3.0, 0.8, 0.2)  # mathtext must stay text
CASES = {
    # name: (write_run keyword arguments, the figures expected to be "Not drawn")
    "only eps 0": ({"eps": (0.0,)}, ATTACKED | SHIFTED),
    "one attack, one eps, a $ in a name": (
        {
            "models": (MODELS[0], DOLLAR),
            "attacks": ("pgd",),
            "eps": (0.3,),
            "corruptions": ("contrast",),
            "severities": (2,),
            "ood": ("uniform",),
        },
        set(),
    ),
    "corruptions without ood sets": (
        {"eps": (0.0, 0.1), "corruptions": ("fog", "rotate"), "severities": (1, 3)},
        {"ood_detection"},
    ),
    "ood sets only, at eps 0": ({"eps": (0.0,), "ood": ("uniform",)}, ATTACKED | CORRUPTED),
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
        # the attribution maps belong to the stored examples: none stored, none drawn
        {"detection_auroc_vs_eps", "examples", "attributions"} | SHIFTED,
    ),
    "explanations off": ({"eps": (0.0, 0.1), "explain": False}, EXPLAINED | SHIFTED),
    "no job yet": (
        {"models": (), "complete": False, "corruptions": ("fog",), "ood": ("uniform",)},
        set(FIGURE_IDS),
    ),
}
# Why a shift figure is not drawn, per case: the caption names the reason.
SHIFT_REASONS = {
    "only eps 0": ("the run has no [shift] section", "the run has no [shift] section"),
    "corruptions without ood sets": (None, "the run's [shift] section lists no ood sets"),
    "ood sets only, at eps 0": ("the run's [shift] section lists no corruptions", None),
    "no job yet": ("no corruption job is stored yet", "no out-of-distribution job is stored yet"),
}


def _check(run_dir: Path, summary: Summary, not_drawn: set[str]) -> dict[str, str]:
    # strict JSON: NaN became null
    text = (run_dir / "summary.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))
    captions = {f.id: f.caption for f in summary.figures}
    assert set(captions) == set(FIGURE_IDS)
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
    captions = _check(run_dir, summary, not_drawn)
    page = (run_dir / "report.html").read_text()
    assert "Robustness report" in page
    corruption, ood = SHIFT_REASONS.get(case, (None, None))
    if corruption:
        assert captions["accuracy_vs_severity"] == f"Not drawn: {corruption}."
        assert captions["calibration_under_shift"] == f"Not drawn: {corruption}."
    if ood:
        assert captions["ood_detection"] == f"Not drawn: {ood}."
    # The page's shift section: absent without a [shift] section, else tables or reasons.
    assert ("<h2>Distribution shift</h2>" in page) == ("shift" in summary.run.config)


def test_a_run_in_progress_gets_a_report_while_its_store_is_written(tmp_path: Path) -> None:
    skip = {JobKey(MODELS[2].name, "pgd", e) for e in (0.0, 0.1)} | {
        JobKey("standard", "fgsm", 0.1),
        ShiftKey("pgd-at", "corruption", "fog", 2),
    }
    run_dir = write_run(
        tmp_path / "run",
        n=40,
        eps=(0.0, 0.1),
        complete=False,
        skip=frozenset(skip),
        corruptions=("fog",),
        severities=(1, 2),
        ood=("uniform",),
    )
    with ResultsStore(run_dir / "results.sqlite") as writer:  # the runner holds it open
        writer.set_meta("complete", False)
        summary = build_report(run_dir)
    captions = _check(run_dir, summary, set())
    assert len(summary.results) == 9 and len(summary.shift) + len(summary.ood) == 8
    # the ensemble has only fgsm at 0.1, so that is its strongest attack there
    assert (
        "under fgsm at eps 0.1 the <script>alert(1)</script> model"
        in (captions["confidence_vs_accuracy"])
    )
    page = (run_dir / "report.html").read_text()
    assert "in progress: 17 of 21 jobs stored (9 attack, 8 shift)" in page
    # pgd-at lacks fog at severity 2: its severity-2 accuracy is n/a, its mCE compares
    # severity 1 only.
    assert "pgd-at: accuracy" in captions["accuracy_vs_severity"]
    assert "n/a at severity 2" in captions["accuracy_vs_severity"]


def test_no_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no results store"):
        build_report(tmp_path)


def test_shift_names_are_escaped_everywhere(tmp_path: Path) -> None:
    corruption, ood = "<script>alert('c')</script>", "<img src=x onerror=alert(1)>"
    run_dir = write_run(
        tmp_path / "run",
        n=40,
        models=MODELS[:2],
        eps=(0.0, 0.1),
        corruptions=(corruption, "contrast"),
        severities=(1, 3),
        ood=(ood,),
    )
    summary = build_report(run_dir)
    captions = _check(run_dir, summary, set())
    page = (run_dir / "report.html").read_text()
    assert "<script" not in page.lower() and ood not in page
    assert page.count("<img") == len(FIGURE_IDS)  # the figures only
    assert "&lt;script&gt;alert(&#x27;c&#x27;)&lt;/script&gt;" in page  # the corruption rows
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the OOD table
    assert corruption in captions["accuracy_vs_severity"]  # captions are text; the page escapes
    assert ood in captions["ood_detection"]
