"""The summary on a crafted store: attack kinds, row notes, the worst case and the probe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reports.page import render_report
from reports.run_data import RunData
from robustbench_local.bench.attack_registry import attack_info
from robustbench_local.bench.protocol import job_metrics
from robustbench_local.results.schema import ADAPTIVE_NOTE, META_ATTACKS
from robustbench_local.results.store import SAMPLE_COLUMNS, JobKey, ResultsStore
from robustbench_local.results.summary import ONLY_ADAPTIVE_NOTE, summarize

N = 120


def _samples(fooled: range) -> dict[str, np.ndarray]:
    """Per-sample columns: every sample correct when clean; those in ``fooled`` attacked."""
    label = np.arange(N) % 10
    wrong = np.isin(np.arange(N), list(fooled))
    columns: dict[str, np.ndarray] = {"idx": np.arange(N), "label": label}
    for column in SAMPLE_COLUMNS:
        if column.endswith("_pred"):
            columns[column] = label.copy()
        elif column != "label":
            columns[column] = np.full(N, 0.5)
    columns["adv_pred"] = np.where(wrong, (label + 1) % 10, label)
    return columns


def _store(
    path: Path, jobs: dict[tuple[str, float], range], extra: dict | None = None
) -> ResultsStore:
    attacks = {"pgd-20": "pgd", "pgd-adaptive": "pgd-adaptive", "fgsm": "fgsm"}
    store = ResultsStore(path)
    labels = sorted({label for label, _ in jobs})
    store.set_meta(
        "config",
        {
            "run": {"name": "crafted", "dataset": "digits", "seed": 0},
            "models": [{"name": "m"}],
            "attacks": [{"label": a, "name": attacks[a], "params": {}} for a in labels],
            "sweep": {"eps": [0.0, 0.1], "norm": "linf"},
        },
    )
    # As the runner does: each label's registry facts, for readers that never import it.
    store.set_meta(META_ATTACKS, {a: attack_info(attacks[a]).to_dict() for a in labels})
    for (label, eps), fooled in jobs.items():
        samples = _samples(fooled)
        metrics = {**job_metrics(samples), **(extra or {}).get((label, eps), {})}
        store.write_job(JobKey("m", label, eps), metrics, samples)
    return store


def test_adaptive_rows_are_marked_and_stay_in_the_worst_case(tmp_path: Path) -> None:
    jobs = {
        ("pgd-20", 0.0): range(0),
        ("pgd-20", 0.1): range(0, 50),
        ("pgd-adaptive", 0.0): range(0),
        ("pgd-adaptive", 0.1): range(40, 70),  # fools 20 that pgd did not
    }
    with _store(tmp_path / "results.sqlite", jobs) as store:
        summary = summarize(store)
        run = RunData(summary, store)
        page = render_report(summary, run.headline, run.palette, {})
    rows = {(r.attack, r.eps): r for r in summary.results}
    assert rows[("pgd-adaptive", 0.1)].kind == "adaptive"
    assert rows[("pgd-adaptive", 0.1)].notes == (ADAPTIVE_NOTE,)
    assert rows[("pgd-20", 0.1)].kind == "gradient" and rows[("pgd-20", 0.1)].notes == ()
    assert f"pgd-adaptive: {ADAPTIVE_NOTE}" in summary.notes
    # Every sample it fools is a real adversarial input: the worst case counts them.
    (worst,) = [w for w in summary.worst_case if w.eps == 0.1]
    assert worst.accuracy == pytest.approx((N - 70) / N) and worst.notes == ()
    # Its accuracy rising with eps, or beating nothing, is not a masking warning.
    assert summary.warnings == ()
    assert "Notes on some rows" in page and ADAPTIVE_NOTE in page


def test_a_worst_case_of_adaptive_attacks_alone_says_so(tmp_path: Path) -> None:
    jobs = {("pgd-adaptive", 0.0): range(0), ("pgd-adaptive", 0.1): range(10)}
    with _store(tmp_path / "results.sqlite", jobs) as store:
        summary = summarize(store)
    notes = {w.eps: w.notes for w in summary.worst_case}
    assert notes == {0.0: (), 0.1: (ONLY_ADAPTIVE_NOTE,)}
    assert any(ONLY_ADAPTIVE_NOTE in n for n in summary.notes)


def test_the_margin_fallback_is_noted_in_its_row(tmp_path: Path) -> None:
    jobs = {("pgd-20", 0.0): range(0), ("pgd-20", 0.1): range(30)}
    extra = {("pgd-20", 0.1): {"margin_fallback": 12.0, "margin_fallback_fooled": 9.0}}
    with _store(tmp_path / "results.sqlite", jobs, extra) as store:
        summary = summarize(store)
    (row,) = [r for r in summary.results if r.eps == 0.1]
    (note,) = row.notes
    assert "margin fallback: 12 sample(s)" in note and "9 of them fooled" in note
    assert list(summary.notes) == [
        "m / pgd-20: unfooled samples with an all-zero cross-entropy gradient (a saturated "
        "softmax, or no gradient at all) were re-attacked with the margin loss (fooled: 9 of "
        "12 at eps 0.1)"
    ]


def _probe(robust: np.ndarray) -> dict:
    return {
        "attack": "square",
        "n_queries": 100,
        "n": len(robust),
        "eps": [0.1],
        "accuracy": [float(robust.mean())],
        "robust": [robust.astype(int).tolist()],
    }


@pytest.mark.parametrize(("probe_fools", "warned"), [(range(0, 90), True), (range(0, 45), False)])
def test_the_probe_is_compared_on_the_same_samples(
    tmp_path: Path, probe_fools: range, warned: bool
) -> None:
    # The gradient attacks fool samples 0-49 (fgsm 0-29); the probe sees samples 0-99.
    jobs = {
        ("pgd-20", 0.0): range(0),
        ("pgd-20", 0.1): range(0, 50),
        ("fgsm", 0.0): range(0),
        ("fgsm", 0.1): range(0, 30),
    }
    robust = ~np.isin(np.arange(100), list(probe_fools))
    with _store(tmp_path / "results.sqlite", jobs) as store:
        store.write_diagnostics("m", {"probe": _probe(robust)})
        summary = summarize(store)
    (probe,) = summary.probes
    assert probe.attacks == ("fgsm", "pgd-20") and probe.n == 100
    assert probe.gradient_accuracy == pytest.approx(0.5)
    assert probe.probe_only == max(len(probe_fools) - 50, 0)
    assert probe.gradient_only == max(50 - len(probe_fools), 0)
    probe_warnings = [w for w in summary.warnings if "gradient-free probe" in w]
    assert bool(probe_warnings) == warned


def test_an_l2_run_records_why_there_is_no_probe(tmp_path: Path) -> None:
    jobs = {("pgd-20", 0.0): range(0), ("pgd-20", 0.1): range(50)}
    with _store(tmp_path / "results.sqlite", jobs) as store:
        store.write_diagnostics("m", {"probe": {"skipped": "square is linf only"}})
        summary = summarize(store)
    assert summary.probes == () and summary.warnings == ()
