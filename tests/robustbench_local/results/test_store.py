"""The results store: atomic jobs, resume, read-only access, exact round trips, and the
distribution-shift tables (also in stores made before them)."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest

from robustbench_local.results.schema import OOD_LABEL, SHIFT_KINDS, ShiftKind
from robustbench_local.results.store import (
    SAMPLE_COLUMNS,
    SHIFT_SAMPLE_COLUMNS,
    JobKey,
    ResultsStore,
    ShiftKey,
    StoreError,
)
from robustbench_local.results.summary import summarize


def _samples(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {"idx": np.arange(n)}
    for column in SAMPLE_COLUMNS:
        integer = column == "label" or column.endswith("_pred")
        out[column] = rng.integers(0, 10, n) if integer else rng.random(n)
    return out


def test_round_trip(tmp_path) -> None:
    key = JobKey("standard", "pgd", 0.1)
    samples = _samples(7, 0)
    image = np.arange(64, dtype=np.float32).reshape(1, 8, 8) / 64
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.set_meta("config", {"run": {"name": "x"}})
        store.write_job(
            key,
            {"accuracy": 0.5, "auroc_total": math.nan},
            samples,
            [(3, image, 1 - image)],
            seconds=1.5,
        )
    with ResultsStore(tmp_path / "results.sqlite", readonly=True) as store:
        assert store.finished() == {key}
        (record,) = store.jobs()
        assert record.metrics["accuracy"] == 0.5 and math.isnan(record.metrics["auroc_total"])
        assert record.seconds == 1.5
        back = store.samples(key)
        for column in ("idx", *SAMPLE_COLUMNS):
            np.testing.assert_array_equal(back[column], samples[column])
        ((idx, clean, adv),) = store.examples(key)
        assert idx == 3 and np.array_equal(clean, image) and np.array_equal(adv, 1 - image)
        assert store.get_meta("config") == {"run": {"name": "x"}}


def test_a_failed_job_write_leaves_nothing(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    bad = _samples(5, 1)
    bad["adv_nll"] = bad["adv_nll"][:3]  # ragged columns fail half-way through
    with pytest.raises(ValueError):
        store.write_job(JobKey("m", "a", 0.1), {"accuracy": 1.0}, bad)
    assert store.finished() == set()
    assert store._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 0
    store.write_job(JobKey("m", "a", 0.1), {"accuracy": 1.0}, _samples(5, 1))
    assert store.finished() == {JobKey("m", "a", 0.1)}


def test_a_job_is_stored_once(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    store.write_job(JobKey("m", "a", 0.1), {"accuracy": 1.0}, _samples(3, 0))
    with pytest.raises(Exception, match="UNIQUE"):
        store.write_job(JobKey("m", "a", 0.1), {"accuracy": 0.0}, _samples(3, 0))
    assert store.jobs()[0].metrics["accuracy"] == 1.0


def test_missing_columns_and_readonly_errors(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    samples = _samples(3, 0)
    del samples["adv_brier"]
    with pytest.raises(ValueError, match=r"samples is missing columns \['adv_brier'\]"):
        store.write_job(JobKey("m", "a", 0.1), {}, samples)
    with pytest.raises(FileNotFoundError, match="no results store"):
        ResultsStore(tmp_path / "other.sqlite", readonly=True)


def test_a_newer_schema_is_refused(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    store.set_meta("schema_version", 99)
    store.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        ResultsStore(tmp_path / "results.sqlite")


def test_the_writer_closes_while_a_reader_has_the_store_open(tmp_path) -> None:
    # A report or progress check may be reading when the run finishes: closing must not fail.
    path = tmp_path / "results.sqlite"
    writer = ResultsStore(path)
    writer.set_meta("complete", True)
    reader = ResultsStore(path, readonly=True)
    assert reader.get_meta("complete") is True
    writer.close()  # cannot leave WAL mode now (the reader holds the file): still closes
    assert reader.get_meta("complete") is True
    reader.close()
    with ResultsStore(path) as again:  # the last writer out folds the log back in
        assert again.get_meta("complete") is True
    assert not path.with_name("results.sqlite-wal").exists()


def _shift_samples(n: int, seed: int, *, ood: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {"idx": np.arange(n)}
    for column in SHIFT_SAMPLE_COLUMNS:
        integer = column in ("label", "pred")
        out[column] = rng.integers(0, 10, n) if integer else rng.random(n)
    if ood:  # as shift_sample_columns writes an OOD set: no label, so no nll or brier
        out["label"] = np.full(n, OOD_LABEL)
        out["nll"] = out["brier"] = np.full(n, math.nan)
    return out


def test_shift_jobs_round_trip_and_resume(tmp_path) -> None:
    corrupted = ShiftKey("standard", "corruption", "gaussian_noise", 3)
    ood = ShiftKey("standard", "ood", "noise", 0)
    samples, ood_samples = _shift_samples(6, 0), _shift_samples(4, 1, ood=True)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        assert store.finished_shifts() == set() and store.shift_jobs() == []
        store.write_shift_job(corrupted, {"accuracy": 0.5, "auroc_total": math.nan}, samples, 2.0)
        store.write_job(JobKey("standard", "pgd", 0.1), {"accuracy": 0.1}, _samples(3, 0))
    with ResultsStore(tmp_path / "results.sqlite") as store:  # a resumed run
        assert store.finished_shifts() == {corrupted}  # what the runner skips
        store.write_shift_job(ood, {"auroc_epistemic": 0.9}, ood_samples)
        with pytest.raises(Exception, match="UNIQUE"):
            store.write_shift_job(corrupted, {"accuracy": 0.0}, samples)
    with ResultsStore(tmp_path / "results.sqlite", readonly=True) as store:
        assert store.finished_shifts() == {corrupted, ood}
        assert store.finished() == {JobKey("standard", "pgd", 0.1)}  # the two kinds apart
        first, second = store.shift_jobs()  # sorted: "corruption" < "ood"
        assert first.key == corrupted and first.seconds == 2.0
        assert first.metrics["accuracy"] == 0.5 and math.isnan(first.metrics["auroc_total"])
        assert second.key == ood and second.metrics == {"auroc_epistemic": 0.9}
        back = store.shift_samples(corrupted)
        for column in ("idx", *SHIFT_SAMPLE_COLUMNS):
            np.testing.assert_array_equal(back[column], samples[column])
        assert back["label"].dtype == back["pred"].dtype == back["idx"].dtype == np.int64
        back = store.shift_samples(ood)
        assert (back["label"] == OOD_LABEL).all() and np.isnan(back["nll"]).all()
        np.testing.assert_array_equal(back["confidence"], ood_samples["confidence"])
        with pytest.raises(KeyError, match="no stored shift job"):
            store.shift_samples(ShiftKey("standard", "corruption", "gaussian_noise", 4))


def test_a_failed_shift_write_leaves_nothing(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    key = ShiftKey("m", "corruption", "contrast", 1)
    bad = _shift_samples(5, 0)
    bad["nll"] = bad["nll"][:3]
    with pytest.raises(ValueError):
        store.write_shift_job(key, {}, bad)
    missing = _shift_samples(5, 0)
    del missing["idx"]
    with pytest.raises(ValueError, match=r"samples is missing columns \['idx'\]"):
        store.write_shift_job(key, {}, missing)
    assert store.finished_shifts() == set()
    assert store._db.execute("SELECT COUNT(*) FROM shift_samples").fetchone()[0] == 0
    store.close()


def test_a_store_made_before_the_shift_tables_reads_as_no_shift_jobs(tmp_path) -> None:
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.write_job(JobKey("m", "pgd", 0.1), {"accuracy": 0.5}, _samples(3, 0))
        store._db.executescript("DROP TABLE shift_samples; DROP TABLE shift_jobs;")
    with ResultsStore(path, readonly=True) as old:
        assert old.finished_shifts() == set() and old.shift_jobs() == []
        with pytest.raises(KeyError, match="no stored shift job"):
            old.shift_samples(ShiftKey("m", "ood", "noise"))
        summary = summarize(old)
        assert summary.shift == () and summary.ood == () and summary.shift_summary == ()
        assert len(summary.results) == 1
    with ResultsStore(path) as resumed:  # a writer adds the tables; the version stays 2
        assert resumed.get_meta("schema_version") == 2
        resumed.write_shift_job(ShiftKey("m", "ood", "noise"), {}, _shift_samples(3, 0))
        assert resumed.finished_shifts() == {ShiftKey("m", "ood", "noise")}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("m", "blur", "x", 1), "kind must be one of"),
        (("m", "ood", "noise", 2), "severity of an ood job must be 0"),
        (("m", "corruption", "contrast", 0), "severity of a corruption job must be >= 1"),
        (("m", "corruption", "contrast", 1.0), "severity must be an int"),
    ],
)
def test_a_bad_shift_key_names_the_field(arguments: tuple, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ShiftKey(*arguments)


def test_the_shift_kinds_literal_and_tuple_agree() -> None:
    assert get_args(ShiftKind) == SHIFT_KINDS
