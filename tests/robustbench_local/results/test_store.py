"""The results store: atomic jobs, resume, read-only access, exact round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robustbench_local.results.store import SAMPLE_COLUMNS, JobKey, ResultsStore, StoreError


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
