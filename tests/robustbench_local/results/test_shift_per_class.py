"""Per-class numbers of the distribution-shift jobs on a crafted store with known answers:
each corruption job's per-class rows, its shift row's worst class and gap, and their
summary.json round trip (an older file without them still reads)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from robustbench_local.results.records import (
    ShiftPerClassRow,
    ShiftRow,
    Summary,
    SummaryFormatError,
)
from robustbench_local.results.schema import META_CLASS_NAMES, OOD_LABEL, SHIFT_SAMPLE_COLUMNS
from robustbench_local.results.store import JobKey, ResultsStore, ShiftKey
from robustbench_local.results.summary import (
    class_numbers,
    per_class_rows,
    read_summary,
    shift_class_disparity,
    shift_per_class_rows,
    summarize,
    worst_class,
    write_summary,
)

# 12 samples, 3 classes of 4: class 0 is samples 0-3, class 1 is 4-7, class 2 is 8-11.
LABEL = np.repeat([0, 1, 2], 4)
# (corruption, severity) -> the samples the model gets wrong. Per class (0, 1, 2):
WRONG = {
    ("fog", 1): [4, 5],  # 1.0, 0.5, 1.0: worst 1, gap 0.5
    ("fog", 2): [0, 4, 5, 6],  # 0.75, 0.25, 1.0: worst 1, gap 0.75
    ("contrast", 1): [0, 4],  # 0.75, 0.75, 1.0: worst 0 tied with 1, gap 0.25
    ("contrast", 2): [],  # all 1.0: worst 0 tied with 1 and 2, gap 0
}
CONFIG = {
    "run": {"name": "shift-classes"},
    "models": [{"name": "m"}],
    # Config order, not alphabetical: fog before contrast.
    "shift": {"corruptions": ["fog", "contrast"], "severities": [1, 2], "ood": ["uniform"]},
}


def shift_columns(wrong: list[int], label: np.ndarray = LABEL) -> dict[str, np.ndarray]:
    """A corruption job's stored columns: ``wrong`` predicted as the next class; confidence
    0.9 in class 0 and 0.8 in the others, epistemic 0.1 and 0.3."""
    n = len(label)
    columns = {"idx": np.arange(n)} | {c: np.full(n, 0.5) for c in SHIFT_SAMPLE_COLUMNS}
    columns["label"] = label.copy()
    columns["pred"] = np.where(np.isin(np.arange(n), wrong), (label + 1) % 3, label)
    columns["confidence"] = np.where(label == 0, 0.9, 0.8)
    columns["epistemic"] = np.where(label == 0, 0.1, 0.3)
    return columns


def write_store(
    path: Path, names: list[str] | None = None, model: str = "m", wrong: dict = WRONG
) -> ResultsStore:
    """The crafted store: the corruption jobs of ``wrong`` and one OOD job (no classes)."""
    store = ResultsStore(path)
    store.set_meta("config", CONFIG | {"models": [{"name": model}]})
    if names is not None:
        store.set_meta(META_CLASS_NAMES, names)
    for (corruption, severity), samples in wrong.items():
        columns = shift_columns(samples)
        accuracy = float(np.mean(columns["pred"] == columns["label"]))
        metrics = {"n": float(len(LABEL)), "accuracy": accuracy}
        store.write_shift_job(ShiftKey(model, "corruption", corruption, severity), metrics, columns)
    ood = shift_columns([]) | {"label": np.full(len(LABEL), OOD_LABEL)}
    store.write_shift_job(ShiftKey(model, "ood", "uniform"), {"n": 12.0}, ood)
    return store


def _summary(tmp_path: Path, names: list[str] | None = None) -> Summary:
    with write_store(tmp_path / "results.sqlite", names) as store:
        return summarize(store)


def test_each_corruption_job_has_one_row_per_class(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    rows = [r for r in summary.shift_per_class if (r.corruption, r.severity) == ("fog", 1)]
    # Class 0: all correct at confidence 0.9 -> ECE 0.1; class 1: half correct at 0.8 ->
    # ECE 0.3; class 2: all correct at 0.8 -> ECE 0.2.
    assert rows == [
        ShiftPerClassRow("m", "fog", 1, 0, "0", 4, 1.0, pytest.approx(0.1), 0.9, 0.1),
        ShiftPerClassRow("m", "fog", 1, 1, "1", 4, 0.5, pytest.approx(0.3), 0.8, 0.3),
        ShiftPerClassRow("m", "fog", 1, 2, "2", 4, 1.0, pytest.approx(0.2), 0.8, 0.3),
    ]
    # The jobs in the order of the shift rows (config order), classes in label order; the
    # OOD job has no true class and no per-class rows.
    assert [(r.corruption, r.severity, r.class_index) for r in summary.shift_per_class] == [
        (c, s, k) for c in ("fog", "contrast") for s in (1, 2) for k in (0, 1, 2)
    ]
    by_job: dict[tuple[str, int], list[float]] = {}
    for c in summary.shift_per_class:
        by_job.setdefault((c.corruption, c.severity), []).append(c.accuracy)
    assert by_job == {
        ("fog", 1): [1.0, 0.5, 1.0],
        ("fog", 2): [0.75, 0.25, 1.0],
        ("contrast", 1): [0.75, 0.75, 1.0],
        ("contrast", 2): [1.0, 1.0, 1.0],
    }
    assert {r.n for r in summary.shift_per_class} == {4}


def test_each_shift_row_names_its_worst_class_and_gap(tmp_path: Path) -> None:
    summary = _summary(tmp_path, names=["cat", "<b>dog", "bird"])
    rows = {(r.corruption, r.severity): r for r in summary.shift}
    disparity = {
        k: (r.worst_class, r.worst_class_accuracy, r.class_accuracy_gap, r.worst_class_ties)
        for k, r in rows.items()
    }
    assert disparity == {
        ("fog", 1): ("<b>dog", 0.5, 0.5, ()),
        ("fog", 2): ("<b>dog", 0.25, 0.75, ()),
        ("contrast", 1): ("cat", 0.75, 0.25, ("<b>dog",)),
        ("contrast", 2): ("cat", 1.0, 0.0, ("<b>dog", "bird")),
    }
    assert [r.class_name for r in summary.shift_per_class[:3]] == ["cat", "<b>dog", "bird"]
    # The overall numbers stay the job's own.
    assert rows[("fog", 2)].accuracy == pytest.approx(8 / 12)


def test_the_summary_json_round_trip_keeps_the_per_class_numbers(tmp_path: Path) -> None:
    summary = _summary(tmp_path, names=["cat", "<b>dog", "bird"])
    path = tmp_path / "summary.json"
    written = write_summary(summary, path)
    on_disk = json.loads(path.read_text())
    assert on_disk == written and on_disk["schema_version"] == 1
    assert on_disk["shift_per_class"][4] == {
        "model": "m",
        "corruption": "fog",
        "severity": 2,
        "class": 1,
        "class_name": "<b>dog",
        "n": 4,
        "accuracy": 0.25,
        "ece": pytest.approx(0.55),  # 1 of 4 right at confidence 0.8
        "mean_confidence": 0.8,
        "mean_epistemic": 0.3,
    }
    assert on_disk["shift"][2]["worst_class"] == "cat"
    assert on_disk["shift"][2]["worst_class_ties"] == ["<b>dog"]
    back = read_summary(path)
    assert back == summary
    assert back.to_json_dict() == on_disk


def test_undefined_numbers_are_null_on_disk_and_nan_back() -> None:
    row = ShiftPerClassRow("m", "fog", 1, 0, "0", 4, 0.5)  # no ECE, confidence, epistemic
    summary = Summary.from_dict({"run": {}, "results": [], "shift_per_class": [row.to_dict()]})
    on_disk = json.loads(json.dumps(summary.to_json_dict()))
    assert on_disk["shift_per_class"][0]["ece"] is None
    (back,) = Summary.from_dict(on_disk).shift_per_class
    assert (back.accuracy, back.n) == (0.5, 4)
    assert math.isnan(back.ece) and math.isnan(back.mean_epistemic)


def test_an_older_summary_without_them_still_reads(tmp_path: Path) -> None:
    old = _summary(tmp_path).to_json_dict()
    del old["shift_per_class"]
    for row in old["shift"]:
        for key in ("worst_class", "worst_class_accuracy", "class_accuracy_gap"):
            del row[key]
        del row["worst_class_ties"]
    back = Summary.from_dict(old)
    assert back.shift_per_class == ()
    assert len(back.shift) == 4 and back.shift[0].accuracy == pytest.approx(10 / 12)
    first = back.shift[0]
    assert first.worst_class is None and first.worst_class_ties == ()
    assert math.isnan(first.worst_class_accuracy) and math.isnan(first.class_accuracy_gap)
    # Nor do the per-class keys leak into a row's metrics when they are there.
    assert (
        "worst_class_accuracy"
        not in Summary.from_dict(_summary(tmp_path / "again").to_json_dict()).shift[0].metrics
    )


def test_a_shift_row_without_per_class_numbers_keeps_its_flat_row() -> None:
    row = ShiftRow("m", "fog", 1, {"accuracy": 0.5})
    assert row.to_dict() == {"model": "m", "corruption": "fog", "severity": 1, "accuracy": 0.5}
    assert shift_class_disparity([row], []) == [row]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"model": "m", "corruption": "fog", "severity": 1}, r"shift_per_class\[\]: missing"),
        (
            {
                "model": "m",
                "corruption": "fog",
                "severity": 1.0,
                "class": 0,
                "class_name": "0",
                "n": 4,
                "accuracy": 1.0,
            },
            r"shift_per_class\[\]\.severity: expected an int",
        ),
        (
            {
                "model": "m",
                "corruption": "fog",
                "severity": 1,
                "class": True,
                "class_name": "0",
                "n": 4,
                "accuracy": 1.0,
            },
            r"shift_per_class\[\]\.class: expected an int",
        ),
    ],
)
def test_misshapen_rows_are_refused_with_the_key(row: dict, message: str) -> None:
    with pytest.raises(SummaryFormatError, match=message):
        Summary.from_dict({"run": {}, "results": [], "shift_per_class": [row]})


def test_absent_columns_read_as_nan_and_ood_jobs_are_refused() -> None:
    columns = shift_columns([4, 5])
    del columns["epistemic"], columns["confidence"]
    rows = shift_per_class_rows(ShiftKey("m", "corruption", "fog", 1), columns, ["a", "b"])
    assert [(r.class_name, r.accuracy) for r in rows] == [("a", 1.0), ("b", 0.5), ("2", 1.0)]
    assert all(math.isnan(r.ece) and math.isnan(r.mean_confidence) for r in rows)
    assert all(math.isnan(r.mean_epistemic) for r in rows)
    with pytest.raises(ValueError, match="no corruption job"):
        shift_per_class_rows(ShiftKey("m", "ood", "uniform"), shift_columns([]))


def test_attack_and_shift_rows_share_one_per_class_computation() -> None:
    label = np.array([2, 0, 2, 2, 0])
    hits = np.array([True, False, False, True, True])
    confidence = np.array([0.9, 0.6, 0.7, 0.8, 0.5])
    numbers = class_numbers(label, hits, confidence=confidence, epistemic=confidence / 10)
    assert [(c.class_index, c.n) for c in numbers] == [(0, 2), (2, 3)]
    assert [c.accuracy for c in numbers] == pytest.approx([0.5, 2 / 3])
    assert [c.mean_confidence for c in numbers] == pytest.approx([0.55, 0.8])
    # Class 0: confidences 0.6 (wrong) and 0.5 (right) fall in different bins: ECE
    # (0.6 + 0.5) / 2 = 0.55.
    assert numbers[0].ece == pytest.approx(0.55)
    wrong = np.where(hits, label, (label + 1) % 3)
    shift = {"label": label, "pred": wrong, "confidence": confidence, "epistemic": confidence / 10}
    attack = {
        "label": label,
        "clean_pred": label,
        "adv_pred": wrong,
        "adv_confidence": confidence,
        "adv_epistemic": confidence / 10,
    }
    for rows in (
        shift_per_class_rows(ShiftKey("m", "corruption", "fog", 3), shift),
        per_class_rows(JobKey("m", "pgd", 0.1), attack),
    ):
        assert [
            (r.class_index, r.n, r.accuracy, r.ece, r.mean_confidence, r.mean_epistemic)
            for r in rows
        ] == [
            (c.class_index, c.n, c.accuracy, c.ece, c.mean_confidence, c.mean_epistemic)
            for c in numbers
        ]


def test_the_worst_class_rule_on_known_answers() -> None:
    worst = worst_class(["a", "b", "c", "d"], [0.5, 0.2, 0.2, 0.9])
    assert (worst.name, worst.accuracy, worst.ties) == ("b", 0.2, ("c",))
    assert worst.gap == pytest.approx(0.7)
    empty = worst_class([], [])
    assert empty.name is None and empty.ties == ()
    assert math.isnan(empty.accuracy) and math.isnan(empty.gap)
