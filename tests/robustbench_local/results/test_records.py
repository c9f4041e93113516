"""The typed summary: JSON round trip, old files, newer schemas and misshapen content."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from robustbench_local.bench.protocol import job_metrics
from robustbench_local.bench.shift_protocol import corruption_metrics, ood_metrics
from robustbench_local.results.records import (
    SUMMARY_SCHEMA_VERSION,
    OodRow,
    PerClassRow,
    ResultRow,
    RunInfo,
    ShiftRow,
    ShiftSummaryRow,
    Summary,
    SummaryFormatError,
    WorstCaseRow,
)
from robustbench_local.results.schema import (
    METRICS,
    OOD_METRICS,
    SAMPLE_COLUMNS,
    SAMPLE_FIELDS,
    SHIFT_METRICS,
)
from robustbench_local.results.summary import read_summary, write_summary


def _summary() -> Summary:
    row = ResultRow(
        "m",
        "pgd",
        0.1,
        {"accuracy": 0.5, "n": 10.0, "auroc_epistemic": math.nan},
        seconds=1.5,
        kind="gradient",
        notes=("a note",),
    )
    return Summary(
        run=RunInfo(
            name="r",
            dataset="digits",
            n_examples=10,
            norm="linf",
            complete=True,
            class_names=("zero", "<b>one</b>"),
        ),
        results=(row,),
        worst_case=(
            WorstCaseRow("m", 0.0, 1.0, ("pgd",), 10),  # as a summary.json before per class
            WorstCaseRow("m", 0.1, 0.5, ("pgd",), 10, (), "<b>one</b>", 0.25, 0.5, ("zero",)),
        ),
        notes=("a note",),
        warnings=("w",),
        shift=(
            ShiftRow("m", "gaussian_noise", 1, {"accuracy": 0.8, "ece": 0.05}),
            ShiftRow("m", "gaussian_noise", 5, {"accuracy": 0.4, "auroc_epistemic": math.nan}),
        ),
        ood=(OodRow("m", "<script>noise", {"n": 50.0, "auroc_total": 0.9, "fpr95_total": 0.3}),),
        shift_summary=(ShiftSummaryRow("m", 0.6, 0.05, 1.0),),
        per_class=(
            PerClassRow("m", "pgd", 0.1, 0, "zero", 6, 0.75, 0.1, 0.9, 0.02),
            PerClassRow("m", "pgd", 0.1, 1, "<b>one</b>", 4, 0.25, math.nan, 0.7, 0.0),
        ),
    )


def test_json_round_trip_keeps_every_number_and_writes_null_for_nan(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(_summary(), path)
    on_disk = json.loads(path.read_text())
    assert on_disk["schema_version"] == SUMMARY_SCHEMA_VERSION
    assert on_disk["results"][0]["auroc_epistemic"] is None  # strict JSON
    back = read_summary(path)
    assert back.to_json_dict() == on_disk
    (row,) = back.results
    assert row.accuracy == 0.5 and row.n == 10 and math.isnan(row.metric("auroc_epistemic"))
    assert row.value("attack") == "pgd" and row.value("accuracy") == 0.5


def test_shift_rows_round_trip_flat_with_null_for_nan() -> None:
    on_disk = json.loads(json.dumps(_summary().to_json_dict()))
    assert on_disk["shift"][1] == {
        "model": "m",
        "corruption": "gaussian_noise",
        "severity": 5,
        "accuracy": 0.4,
        "auroc_epistemic": None,
    }
    assert on_disk["ood"][0]["ood"] == "<script>noise" and on_disk["ood"][0]["n"] == 50.0
    assert on_disk["shift_summary"] == [
        {"model": "m", "mean_corruption_accuracy": 0.6, "mean_shift_ece": 0.05, "mce": 1.0}
    ]
    back = Summary.from_dict(on_disk)
    assert back.to_json_dict() == on_disk
    assert back.shift[0].accuracy == 0.8 and math.isnan(back.shift[1].metric("auroc_epistemic"))
    assert math.isnan(back.shift[0].metric("auroc_total"))  # known, not stored: NaN
    assert back.ood[0].metric("fpr95_total") == 0.3
    assert back.shift_summary == _summary().shift_summary


def test_a_file_without_shift_keys_reads_as_a_run_without_shift_jobs() -> None:
    old = _summary().to_json_dict()
    for key in ("shift", "ood", "shift_summary"):
        del old[key]
    back = Summary.from_dict(old)
    assert back.shift == () and back.ood == () and back.shift_summary == ()
    assert back.results[0].accuracy == 0.5


def test_shift_rows_know_their_metric_names() -> None:
    summary = _summary()
    with pytest.raises(KeyError, match="unknown metric 'auroc_confidence_noise'"):
        summary.shift[0].metric("auroc_confidence_noise")  # an attack metric, not a shift one
    with pytest.raises(KeyError, match="unknown metric 'accuracy'"):
        summary.ood[0].metric("accuracy")  # OOD inputs have no true class


def test_the_schema_names_every_metric_the_shift_protocol_writes() -> None:
    rng = np.random.default_rng(0)
    n = 30
    columns = {f: rng.random(n) for f in SAMPLE_FIELDS} | {"pred": rng.integers(0, 3, n)}
    y = rng.integers(0, 3, n)
    assert set(corruption_metrics(columns, columns, y)) == set(SHIFT_METRICS)
    assert set(ood_metrics(columns, columns)) == set(OOD_METRICS)


def test_per_class_rows_round_trip_flat_with_null_for_nan() -> None:
    on_disk = json.loads(json.dumps(_summary().to_json_dict()))
    assert on_disk["per_class"][1] == {
        "model": "m",
        "attack": "pgd",
        "eps": 0.1,
        "class": 1,
        "class_name": "<b>one</b>",
        "n": 4,
        "accuracy": 0.25,
        "ece": None,
        "mean_confidence": 0.7,
        "mean_epistemic": 0.0,
    }
    assert on_disk["run"]["class_names"] == ["zero", "<b>one</b>"]
    assert on_disk["worst_case"][0]["worst_class"] is None
    assert on_disk["worst_case"][1]["worst_class_ties"] == ["zero"]
    back = Summary.from_dict(on_disk)
    assert back.to_json_dict() == on_disk
    assert back.per_class[0] == _summary().per_class[0] and math.isnan(back.per_class[1].ece)
    assert back.worst_case[1] == _summary().worst_case[1]
    assert back.run.class_name(1) == "<b>one</b>" and back.run.class_name(7) == "7"


def test_a_file_without_per_class_keys_reads_as_unknown() -> None:
    old = _summary().to_json_dict()
    del old["per_class"], old["run"]["class_names"]
    for row in old["worst_case"]:
        for key in (
            "worst_class",
            "worst_class_accuracy",
            "class_accuracy_gap",
            "worst_class_ties",
        ):
            del row[key]
    back = Summary.from_dict(old)
    assert back.per_class == () and back.run.class_names == ()
    worst = back.worst_case[1]
    assert worst.worst_class is None and worst.worst_class_ties == ()
    assert math.isnan(worst.worst_class_accuracy) and math.isnan(worst.class_accuracy_gap)
    assert back.run.class_name(1) == "1"


def test_a_file_without_a_schema_version_reads_as_version_one() -> None:
    old = _summary().to_json_dict()
    del old["schema_version"]
    assert Summary.from_dict(old).results[0].accuracy == 0.5


def test_a_newer_schema_is_refused_with_what_to_do() -> None:
    newer = _summary().to_json_dict() | {"schema_version": SUMMARY_SCHEMA_VERSION + 1}
    with pytest.raises(SummaryFormatError, match=r"newer than .* `rbl report RUN_DIR`"):
        Summary.from_dict(newer)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run": []}, "run: expected an object"),
        ({"results": 3}, "summary.results: expected a list"),
        ({"results": [{"model": "m"}]}, r"results\[\]: missing key\(s\) 'attack', 'eps'"),
        ({"results": [{"model": "m", "attack": "a", "eps": "x"}]}, "expected a number"),
        ({"worst_case": [{"x": 1}]}, r"worst_case\[\]: missing key"),
        ({"schema_version": "1"}, "schema_version: expected a positive int"),
        ({"shift": [{"model": "m", "severity": 1}]}, r"shift\[\]: missing key\(s\) 'corruption'"),
        (
            {"shift": [{"model": "m", "corruption": "c", "severity": 1.5}]},
            r"shift\[\].severity: expected an int",
        ),
        ({"shift": [{"model": "m", "corruption": "c", "severity": 1, "ece": "x"}]}, "a number"),
        ({"ood": {"model": "m"}}, "summary.ood: expected a list"),
        ({"ood": [{"ood": "noise"}]}, r"ood\[\]: missing key\(s\) 'model'"),
        ({"shift_summary": [{"model": "m"}]}, r"shift_summary\[\]: missing key"),
        ({"per_class": [{"model": "m"}]}, r"per_class\[\]: missing key\(s\) 'attack'"),
        (
            {
                "per_class": [
                    {
                        "model": "m",
                        "attack": "a",
                        "eps": 0.1,
                        "class": 1.5,
                        "class_name": "x",
                        "n": 3,
                        "accuracy": 0.5,
                    }
                ]
            },
            r"per_class\[\].class: expected an int",
        ),
    ],
)
def test_misshapen_content_names_the_key(change: dict, message: str) -> None:
    with pytest.raises(SummaryFormatError, match=message):
        Summary.from_dict(_summary().to_json_dict() | change)


def test_not_json_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("{not json")
    with pytest.raises(SummaryFormatError, match="not valid JSON"):
        read_summary(path)


def test_a_misspelt_metric_fails_loudly() -> None:
    with pytest.raises(KeyError, match="unknown metric 'acuracy'"):
        _summary().results[0].metric("acuracy")


def test_the_schema_names_every_metric_the_protocol_writes() -> None:
    rng = np.random.default_rng(0)
    n = 40
    samples = {c: rng.random(n) for c in SAMPLE_COLUMNS}
    for column in ("label", "clean_pred", "adv_pred", "noise_pred"):
        samples[column] = rng.integers(0, 3, n)
    assert set(job_metrics(samples)) <= set(METRICS)


def test_an_unknown_numeric_column_from_a_newer_writer_is_kept() -> None:
    data = _summary().to_json_dict()
    data["results"][0] |= {"future_metric": 0.25, "future_text": "x"}
    row = Summary.from_dict(data).results[0]
    assert row.metrics["future_metric"] == 0.25 and "future_text" not in row.metrics
