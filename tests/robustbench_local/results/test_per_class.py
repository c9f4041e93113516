"""Per-class disparity on crafted stores with known answers: each job's per-class rows,
its row's worst-class accuracy and gap, and the worst case's worst class (ties included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reports.page import render_report
from reports.run_data import RunData
from robustbench_local.bench.protocol import job_metrics
from robustbench_local.results.records import PerClassRow
from robustbench_local.results.schema import META_CLASS_NAMES
from robustbench_local.results.store import SAMPLE_COLUMNS, JobKey, ResultsStore
from robustbench_local.results.summary import class_accuracies, class_disparity, summarize

# 12 samples, 3 classes of 4: class 0 is samples 0-3, class 1 is 4-7, class 2 is 8-11.
LABEL = np.repeat([0, 1, 2], 4)


def _samples(fooled: list[int], clean_wrong: list[int] = ()) -> dict[str, np.ndarray]:
    """Every sample correct when clean (but ``clean_wrong``), those in ``fooled`` attacked;
    adversarial confidence 0.9 in class 0 and 0.8 in the others, epistemic 0.1 and 0.3."""
    n = len(LABEL)
    columns: dict[str, np.ndarray] = {"idx": np.arange(n), "label": LABEL.copy()}
    for column in SAMPLE_COLUMNS:
        if column.endswith("_pred"):
            columns[column] = LABEL.copy()
        elif column != "label":
            columns[column] = np.full(n, 0.5)
    wrong = (LABEL + 1) % 3
    columns["adv_pred"] = np.where(np.isin(np.arange(n), fooled), wrong, LABEL)
    columns["clean_pred"] = np.where(np.isin(np.arange(n), clean_wrong), wrong, LABEL)
    columns["adv_confidence"] = np.where(LABEL == 0, 0.9, 0.8)
    columns["adv_epistemic"] = np.where(LABEL == 0, 0.1, 0.3)
    return columns


def _store(
    path: Path, jobs: dict[tuple[str, float], dict], names: list[str] | None = None
) -> ResultsStore:
    store = ResultsStore(path)
    store.set_meta(
        "config",
        {
            "run": {"name": "classes", "dataset": "digits", "seed": 0},
            "models": [{"name": "m"}],
            "sweep": {"eps": sorted({e for _, e in jobs}), "norm": "linf"},
        },
    )
    if names is not None:
        store.set_meta(META_CLASS_NAMES, names)
    for (attack, eps), samples in jobs.items():
        store.write_job(JobKey("m", attack, eps), job_metrics(samples), samples)
    return store


def test_one_class_half_fooled(tmp_path: Path) -> None:
    with _store(tmp_path / "r.sqlite", {("pgd", 0.1): _samples([4, 5])}) as store:
        summary = summarize(store)
    (row,) = summary.results
    assert row.metric("worst_class_accuracy") == 0.5
    assert row.metric("class_accuracy_gap") == 0.5
    assert row.accuracy == pytest.approx(10 / 12)  # the overall number is unchanged
    # Class 0: all correct at confidence 0.9 -> ECE 0.1; class 1: half correct at 0.8 -> 0.3;
    # class 2: all correct at 0.8 -> 0.2.
    assert summary.per_class == (
        PerClassRow("m", "pgd", 0.1, 0, "0", 4, 1.0, pytest.approx(0.1), 0.9, 0.1),
        PerClassRow("m", "pgd", 0.1, 1, "1", 4, 0.5, pytest.approx(0.3), 0.8, 0.3),
        PerClassRow("m", "pgd", 0.1, 2, "2", 4, 1.0, pytest.approx(0.2), 0.8, 0.3),
    )
    (worst,) = summary.worst_case
    assert (worst.worst_class, worst.worst_class_accuracy, worst.class_accuracy_gap) == (
        "1",
        0.5,
        0.5,
    )
    assert worst.worst_class_ties == ()


def test_clean_errors_count_as_not_robust_within_their_class(tmp_path: Path) -> None:
    samples = _samples(fooled=[], clean_wrong=[0])
    with _store(tmp_path / "r.sqlite", {("pgd", 0.1): samples}) as store:
        summary = summarize(store)
    assert [r.accuracy for r in summary.per_class] == [0.75, 1.0, 1.0]
    assert summary.results[0].metric("worst_class_accuracy") == 0.75


def test_the_worst_case_is_per_sample_within_each_class_and_names_ties(tmp_path: Path) -> None:
    # Each attack alone leaves one class at 3/4; together classes 0 and 1 are at 3/4.
    jobs = {("pgd", 0.1): _samples([4]), ("fgsm", 0.1): _samples([0])}
    names = ["cat", "<script>dog</script>", "bird"]
    with _store(tmp_path / "r.sqlite", jobs, names) as store:
        summary = summarize(store)
        run = RunData(summary, store)
        page = render_report(summary, run.headline, run.palette, {})
        classes, eps, grid, counts = run.class_worst_case("m")
    rows = {r.attack: r for r in summary.results}
    assert rows["pgd"].metric("worst_class_accuracy") == 0.75
    assert rows["fgsm"].metric("class_accuracy_gap") == 0.25
    assert [r.class_name for r in summary.per_class] == names * 2
    (worst,) = summary.worst_case
    assert worst.accuracy == pytest.approx(10 / 12)
    assert worst.class_accuracy_gap == 0.25
    assert (worst.worst_class, worst.worst_class_ties) == ("cat", ("<script>dog</script>",))
    assert summary.run.class_names == tuple(names)
    # The report's grid is the same per-sample worst case.
    assert classes.tolist() == [0, 1, 2] and eps.tolist() == [0.1]
    assert counts.tolist() == [4, 4, 4] and grid.tolist() == [[0.75], [0.75], [1.0]]
    # A class name read from the dataset's files is escaped on the page.
    assert "<script>dog" not in page
    assert (
        "m: worst class cat, tied with &lt;script&gt;dog&lt;/script&gt; (robust accuracy 75.0% "
        "vs 83.3% overall)"
    ) in page


def test_no_class_is_singled_out_where_all_are_equal(tmp_path: Path) -> None:
    jobs = {("pgd", 0.1): _samples([4, 8]), ("fgsm", 0.1): _samples([0])}
    with _store(tmp_path / "r.sqlite", jobs) as store:
        summary = summarize(store)
        run = RunData(summary, store)
        page = render_report(summary, run.headline, run.palette, {})
    (worst,) = summary.worst_case
    assert (worst.worst_class, worst.worst_class_ties, worst.class_accuracy_gap) == (
        "0",
        ("1", "2"),
        0.0,
    )
    assert "m: every class equal (robust accuracy 75.0% vs 75.0% overall)" in page


def test_class_helpers_on_known_answers() -> None:
    classes, counts, accuracy = class_accuracies(
        np.array([2, 0, 2, 2, 0]), np.array([True, False, False, True, True])
    )
    assert classes.tolist() == [0, 2] and counts.tolist() == [2, 3]
    assert accuracy == pytest.approx([0.5, 2 / 3])
    assert class_disparity(np.array([0.5, 0.2, 0.2, 0.9])) == (1, 0.2, pytest.approx(0.7))
    worst, value, gap = class_disparity(np.zeros(0))
    assert worst is None and np.isnan(value) and np.isnan(gap)
