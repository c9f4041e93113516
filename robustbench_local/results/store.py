"""The results store: one SQLite file per run, one transaction per finished job.

A run killed at any moment loses at most the job in flight: a job's aggregate row, its
per-sample rows and its example images are committed together or not at all, and a
restarted run skips every job already stored. ``reports`` reads this file and nothing
else, so everything a report draws must be stored here.

Tables:
    meta(key, value)          run-level facts as JSON (config, digest, versions, device)
    jobs(model, attack, eps, metrics, seconds, finished)      one row per finished job
    samples(job, idx, ...)    per sample: label; for the clean, adversarial and noisy
                              input: prediction, confidence, uncertainties, nll, brier;
                              the perturbation's size
    examples(job, idx, ...)   a few clean and adversarial images per job, for the gallery
    diagnostics(model, values) per model, the gradient-masking measurements (diagnostics.py)
    shift_jobs(model, kind, name, severity, metrics, seconds, finished)
                              one row per finished distribution-shift job: a corruption at
                              a severity 1..5, or an out-of-distribution set (severity 0)
    shift_samples(job, idx, label, pred, ...)   per sample of a shift job: prediction,
                              confidence, uncertainties, nll, brier (label -1 and nll, brier
                              NULL for out-of-distribution inputs)

    explain_maps(job, idx, shape, clean, adv, similarity)
                              per stored example of a job: its clean and adversarial
                              attribution maps (H, W) and their rank correlation
    explain(model, values, shape, exemplars)
                              per model: its concept directions' facts as JSON (subset
                              and exemplar indices, k, D) and the exemplar images
    transform_examples(job, idx, draw, shape, clean, adv, clean_pred, adv_pred, ...)
                              for an EOT attack's job (pgd-eot): a few clean and
                              adversarial images under the same random transformation,
                              with the model's prediction and confidence on each

The shift, explain and transform tables came after schema version 2 and are created when missing,
without a new version: a version-2 store still opens, and one opened read-only without them
reads as a run without shift jobs or explanations.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_local.results.schema import (
    SAMPLE_COLUMNS,
    SHIFT_KINDS,
    SHIFT_SAMPLE_COLUMNS,
    ShiftKind,
)

__all__ = [
    "SAMPLE_COLUMNS",
    "SHIFT_SAMPLE_COLUMNS",
    "ConceptRecord",
    "FailedTask",
    "JobExplain",
    "JobKey",
    "JobRecord",
    "ResultsStore",
    "ShiftKey",
    "ShiftRecord",
    "StoreError",
    "TransformExample",
]

SCHEMA_VERSION = 2

_SHIFT_INTEGERS = ("idx", "label", "pred")
_SHIFT_COLUMN_TYPES = ", ".join(
    f"{c} {'INTEGER' if c in _SHIFT_INTEGERS else 'REAL'}" for c in SHIFT_SAMPLE_COLUMNS
)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL, attack TEXT NOT NULL, eps REAL NOT NULL,
    metrics TEXT NOT NULL, seconds REAL NOT NULL, finished REAL NOT NULL,
    UNIQUE (model, attack, eps)
);
CREATE TABLE IF NOT EXISTS samples (
    job INTEGER NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
    {
    ", ".join(
        f"{c} {'INTEGER' if c == 'label' or c.endswith('_pred') else 'REAL'}"
        for c in SAMPLE_COLUMNS
    )
},
    PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS diagnostics (model TEXT PRIMARY KEY, "values" TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    job INTEGER NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
    shape TEXT NOT NULL, clean BLOB NOT NULL, adv BLOB NOT NULL,
    PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS shift_jobs (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, severity INTEGER NOT NULL,
    metrics TEXT NOT NULL, seconds REAL NOT NULL, finished REAL NOT NULL,
    UNIQUE (model, kind, name, severity)
);
CREATE TABLE IF NOT EXISTS shift_samples (
    job INTEGER NOT NULL REFERENCES shift_jobs(id), idx INTEGER NOT NULL,
    {_SHIFT_COLUMN_TYPES},
    PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS explain_maps (
    job INTEGER NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,
    shape TEXT NOT NULL, clean BLOB NOT NULL, adv BLOB NOT NULL, similarity REAL,
    PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS explain (
    model TEXT PRIMARY KEY, "values" TEXT NOT NULL, shape TEXT NOT NULL, exemplars BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS transform_examples (
    job INTEGER NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL, draw INTEGER NOT NULL,
    shape TEXT NOT NULL, clean BLOB NOT NULL, adv BLOB NOT NULL,
    clean_pred INTEGER NOT NULL, adv_pred INTEGER NOT NULL,
    clean_confidence REAL NOT NULL, adv_confidence REAL NOT NULL,
    PRIMARY KEY (job, idx, draw)
);
CREATE TABLE IF NOT EXISTS failed (
    kind TEXT NOT NULL, key TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
"""


@dataclass(frozen=True)
class FailedTask:
    """A task that raised on every attempt (see `ResultsStore.write_failure`)."""

    kind: str
    key: dict[str, Any]
    error: str
    attempts: int


class StoreError(ValueError):
    """A store that cannot be used for this run (another config, a newer schema)."""


@dataclass(frozen=True, order=True)
class JobKey:
    """One unit of work: a model under an attack at one epsilon."""

    model: str
    attack: str
    eps: float


@dataclass(frozen=True)
class TransformExample:
    """One stored image of an EOT job under one random transformation (the report's gallery).

    Attributes:
        idx: the sample's index in the evaluated split; draw: which transformation (0, 1, ...).
        clean, adv: (C, H, W) the clean and the adversarial image under that transformation.
        clean_pred, adv_pred: the model's predictions on them.
        clean_confidence, adv_confidence: its top-class probabilities.
    """

    idx: int
    draw: int
    clean: np.ndarray
    adv: np.ndarray
    clean_pred: int
    adv_pred: int
    clean_confidence: float
    adv_confidence: float


@dataclass(frozen=True)
class JobRecord:
    """A finished job as stored: its key, aggregate metrics and duration."""

    key: JobKey
    metrics: Mapping[str, float]
    seconds: float


@dataclass(frozen=True, order=True)
class ShiftKey:
    """One distribution-shift job: a model on one corruption at one severity, or on one
    out-of-distribution set.

    Attributes:
        model: the model's name.
        kind: "corruption" or "ood".
        name: the corruption (``rbl list corruptions``) or the OOD set.
        severity: 1..5 for a corruption; 0 for an OOD set.
    """

    model: str
    kind: ShiftKind
    name: str
    severity: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SHIFT_KINDS:
            raise ValueError(f"kind must be one of {SHIFT_KINDS}; got {self.kind!r}")
        if isinstance(self.severity, bool) or not isinstance(self.severity, int | np.integer):
            raise TypeError(f"severity must be an int; got {self.severity!r}")
        if self.kind == "ood" and self.severity != 0:
            raise ValueError(f"severity of an ood job must be 0; got {self.severity!r}")
        if self.kind == "corruption" and self.severity < 1:
            raise ValueError(f"severity of a corruption job must be >= 1; got {self.severity!r}")
        object.__setattr__(self, "severity", int(self.severity))


@dataclass(frozen=True)
class ShiftRecord:
    """A finished shift job as stored: its key, aggregate metrics and duration."""

    key: ShiftKey
    metrics: Mapping[str, float]
    seconds: float


@dataclass(frozen=True)
class ConceptRecord:
    """A model's latent concept directions as the report needs them (explain_jobs.py).

    Attributes:
        model: the model's name.
        values: JSON-ready facts: the method, k, the feature dimension D, the explained
            subset's and each direction's exemplars' sample indices, or a note why the
            model has no directions.
        exemplars: (k, n, C, H, W) float32 images: each direction's top exemplars, best
            first; (0,) when there are none.
    """

    model: str
    values: Mapping[str, Any]
    exemplars: np.ndarray


@dataclass(frozen=True)
class JobExplain:
    """What a job adds to the store when explanations are on.

    Attributes:
        maps: per stored example, (sample index, clean map (H, W), adversarial map (H, W),
            their Spearman rank correlation).
        concepts: the model's concept record, written (or replaced by an identical one)
            with the job, so a run killed after any job has it; None when already sent.
    """

    maps: Sequence[tuple[int, np.ndarray, np.ndarray, float]] = ()
    concepts: ConceptRecord | None = None


def _json_default(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} {value!r} as JSON")


def _dumps(value: object) -> str:
    # NaN (an undefined AUROC, say) is kept: Python's json writes and reads it back.
    return json.dumps(value, default=_json_default, sort_keys=True)


class ResultsStore:
    """A run's SQLite store.

    Args:
        path: the ``results.sqlite`` file; created with its tables when missing.
        readonly: open an existing store for reading only (reports never write).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no results store at {str(self.path)!r}")
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)  # explicit transactions
            # WAL: readers (rbl report, a progress check) never block the writer.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed job survives a power cut
            self._db.executescript(_SCHEMA)
        version = self.get_meta("schema_version")
        if version is None and not readonly:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version is not None and version < SCHEMA_VERSION and not readonly:
            raise StoreError(
                f"{self.path}: made by an older robustbench-local (schema "
                f"{version}, now {SCHEMA_VERSION}); start a new run folder"
            )
        elif version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this "
                f"robustbench-local understands ({SCHEMA_VERSION}); upgrade it"
            )

    def close(self) -> None:
        """Close; a writer first folds its write-ahead log into results.sqlite and leaves WAL
        mode, so the one file holds everything and later readers need no side files."""
        if not self.readonly:
            # With another connection open (a report being read) leaving WAL needs the file
            # to itself and fails; everything is committed, the -wal file just stays beside it.
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---- run-level facts -------------------------------------------------------------
    def set_meta(self, key: str, value: object) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, _dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    # ---- failed tasks ------------------------------------------------------------------
    # A task that raised on every attempt: kept until the next run plans it again (its job
    # is not finished, so a resume retries it).
    def write_failure(
        self, kind: str, key: Mapping[str, object], error: str, attempts: int
    ) -> None:
        """Record a failed task: its kind ("job", "diagnostics", "shift"), its key's fields,
        the last error (one line) and how many times it ran."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO failed VALUES (?, ?, ?, ?, ?)",
                (kind, _dumps(dict(key)), error, attempts, time.time()),
            )

    def failures(self) -> list[FailedTask]:
        """The failed tasks, in the order they failed (none in a store older than them)."""
        has = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'failed'"
        ).fetchone()
        if has is None:
            return []
        rows = self._db.execute(
            "SELECT kind, key, error, attempts FROM failed ORDER BY finished, rowid"
        )
        return [FailedTask(kind, json.loads(key), error, n) for kind, key, error, n in rows]

    def clear_failures(self) -> None:
        """Forget the failures: the run about to start plans those tasks again."""
        with self._transaction() as db:
            db.execute("DELETE FROM failed")

    # ---- jobs --------------------------------------------------------------------------
    def write_job(
        self,
        key: JobKey,
        metrics: Mapping[str, float],
        samples: Mapping[str, np.ndarray],
        examples: Sequence[tuple[int, np.ndarray, np.ndarray]] = (),
        seconds: float = 0.0,
        explain: JobExplain | None = None,
        transform_examples: Sequence[TransformExample] = (),
    ) -> None:
        """Store a finished job atomically: its metrics, per-sample rows and examples.

        Args:
            key: the job.
            metrics: aggregate numbers (name -> float).
            samples: column -> array (N,) for every name in SAMPLE_COLUMNS, plus "idx".
            examples: (sample index, clean image (C, H, W), adversarial image) triples.
            seconds: the job's wall time.
            explain: the examples' attribution maps and the model's concept record, in
                the same transaction (None: explanations are off).
            transform_examples: an EOT job's images under random transformations.
        """
        missing = set(SAMPLE_COLUMNS) - samples.keys()
        if missing:
            raise ValueError(f"samples is missing columns {sorted(missing)}")
        columns = ("idx", *SAMPLE_COLUMNS)
        rows = list(zip(*(np.asarray(samples[c]).tolist() for c in columns), strict=True))
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (model, attack, eps, metrics, seconds, finished) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key.model, key.attack, key.eps, _dumps(dict(metrics)), seconds, time.time()),
            )
            job_id = cursor.lastrowid
            db.executemany(
                f"INSERT INTO samples (job, {', '.join(columns)}) "
                f"VALUES ({', '.join('?' * (len(columns) + 1))})",
                [(job_id, *row) for row in rows],
            )
            db.executemany(
                "INSERT INTO examples VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        int(idx),
                        _dumps(list(clean.shape)),
                        np.asarray(clean, dtype=np.float32).tobytes(),
                        np.asarray(adv, dtype=np.float32).tobytes(),
                    )
                    for idx, clean, adv in examples
                ],
            )
            if explain is not None:
                _write_explain(db, job_id, explain)
            db.executemany(
                "INSERT INTO transform_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        t.idx,
                        t.draw,
                        _dumps(list(np.shape(t.clean))),
                        np.asarray(t.clean, dtype=np.float32).tobytes(),
                        np.asarray(t.adv, dtype=np.float32).tobytes(),
                        t.clean_pred,
                        t.adv_pred,
                        t.clean_confidence,
                        t.adv_confidence,
                    )
                    for t in transform_examples
                ],
            )

    def write_diagnostics(self, model: str, values: Mapping[str, float]) -> None:
        """Store a model's diagnostics (one transaction)."""
        with self._transaction() as db:
            db.execute(
                'INSERT OR REPLACE INTO diagnostics (model, "values") VALUES (?, ?)',
                (model, _dumps(dict(values))),
            )

    def diagnostics(self) -> dict[str, dict[str, float]]:
        """model -> its stored diagnostics."""
        rows = self._db.execute('SELECT model, "values" FROM diagnostics')
        return {model: json.loads(values) for model, values in rows}

    def finished(self) -> set[JobKey]:
        """The keys of every stored job."""
        rows = self._db.execute("SELECT model, attack, eps FROM jobs")
        return {JobKey(m, a, e) for m, a, e in rows}

    def jobs(self) -> list[JobRecord]:
        """Every stored job, sorted by model, attack and eps."""
        rows = self._db.execute("SELECT model, attack, eps, metrics, seconds FROM jobs")
        records = [JobRecord(JobKey(m, a, e), json.loads(js), s) for m, a, e, js, s in rows]
        return sorted(records, key=lambda r: r.key)

    def _job_id(self, key: JobKey) -> int:
        row = self._db.execute(
            "SELECT id FROM jobs WHERE model = ? AND attack = ? AND eps = ?",
            (key.model, key.attack, key.eps),
        ).fetchone()
        if row is None:
            raise KeyError(f"no stored job {key}")
        return int(row[0])

    def samples(self, key: JobKey) -> dict[str, np.ndarray]:
        """A job's per-sample columns (plus "idx"), each (N,), ordered by sample index."""
        columns = ("idx", *SAMPLE_COLUMNS)
        rows = self._db.execute(
            f"SELECT {', '.join(columns)} FROM samples WHERE job = ? ORDER BY idx",
            (self._job_id(key),),
        ).fetchall()
        data = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))
        out = {c: data[:, i] for i, c in enumerate(columns)}
        for c in ("idx", "label", "clean_pred", "adv_pred"):
            out[c] = out[c].astype(np.int64)
        return out

    # ---- distribution-shift jobs -------------------------------------------------------
    def _has_shift_tables(self) -> bool:
        """False for a store made before the shift tables, opened read-only (a writer
        creates them): such a run simply has no shift jobs."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('shift_jobs', 'shift_samples')"
        ).fetchone()
        return int(row[0]) == 2

    def write_shift_job(
        self,
        key: ShiftKey,
        metrics: Mapping[str, float],
        samples: Mapping[str, np.ndarray],
        seconds: float = 0.0,
    ) -> None:
        """Store a finished shift job atomically: its metrics and per-sample rows.

        Args:
            key: the job.
            metrics: aggregate numbers (name -> float; `schema.SHIFT_METRICS` for a
                corruption, `schema.OOD_METRICS` for an OOD set).
            samples: column -> array (N,) for every name in SHIFT_SAMPLE_COLUMNS, plus
                "idx"; NaN (an OOD input's nll) is stored as NULL and read back as NaN.
            seconds: the job's wall time.
        """
        columns = ("idx", *SHIFT_SAMPLE_COLUMNS)
        missing = set(columns) - samples.keys()
        if missing:
            raise ValueError(f"samples is missing columns {sorted(missing)}")
        rows = list(zip(*(np.asarray(samples[c]).tolist() for c in columns), strict=True))
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO shift_jobs (model, kind, name, severity, metrics, seconds, "
                "finished) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.model,
                    key.kind,
                    key.name,
                    key.severity,
                    _dumps(dict(metrics)),
                    seconds,
                    time.time(),
                ),
            )
            job_id = cursor.lastrowid
            db.executemany(
                f"INSERT INTO shift_samples (job, {', '.join(columns)}) "
                f"VALUES ({', '.join('?' * (len(columns) + 1))})",
                [(job_id, *row) for row in rows],
            )

    def finished_shifts(self) -> set[ShiftKey]:
        """The keys of every stored shift job (empty for a store without shift tables)."""
        if not self._has_shift_tables():
            return set()
        rows = self._db.execute("SELECT model, kind, name, severity FROM shift_jobs")
        return {ShiftKey(m, k, n, s) for m, k, n, s in rows}

    def shift_jobs(self) -> list[ShiftRecord]:
        """Every stored shift job, sorted by model, kind, name and severity."""
        if not self._has_shift_tables():
            return []
        rows = self._db.execute(
            "SELECT model, kind, name, severity, metrics, seconds FROM shift_jobs"
        )
        records = [
            ShiftRecord(ShiftKey(m, k, n, s), json.loads(js), sec) for m, k, n, s, js, sec in rows
        ]
        return sorted(records, key=lambda r: r.key)

    def shift_samples(self, key: ShiftKey) -> dict[str, np.ndarray]:
        """A shift job's per-sample columns (plus "idx"), each (N,), ordered by sample index;
        idx, label and pred as int64, the rest float64 (NaN where stored as NULL).

        Raises:
            KeyError: no such job is stored.
        """
        row = None
        if self._has_shift_tables():
            row = self._db.execute(
                "SELECT id FROM shift_jobs WHERE model = ? AND kind = ? AND name = ? "
                "AND severity = ?",
                (key.model, key.kind, key.name, key.severity),
            ).fetchone()
        if row is None:
            raise KeyError(f"no stored shift job {key}")
        columns = ("idx", *SHIFT_SAMPLE_COLUMNS)
        rows = self._db.execute(
            f"SELECT {', '.join(columns)} FROM shift_samples WHERE job = ? ORDER BY idx",
            (int(row[0]),),
        ).fetchall()
        # None (SQLite's NULL, what a NaN was stored as) becomes NaN in a float64 array.
        data = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))
        out = {c: data[:, i] for i, c in enumerate(columns)}
        for c in _SHIFT_INTEGERS:
            out[c] = out[c].astype(np.int64)
        return out

    # ---- EOT jobs ----------------------------------------------------------------------
    def transform_examples(self, key: JobKey) -> list[TransformExample]:
        """An EOT job's images under random transformations, by sample and draw; empty for
        any other job (and for a store made before the table, opened read-only)."""
        exists = self._db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
            "AND name = 'transform_examples'"
        ).fetchone()[0]
        if not exists:
            return []
        rows = self._db.execute(
            "SELECT idx, draw, shape, clean, adv, clean_pred, adv_pred, clean_confidence, "
            "adv_confidence FROM transform_examples WHERE job = ? ORDER BY idx, draw",
            (self._job_id(key),),
        ).fetchall()
        out = []
        for idx, draw, shape, clean, adv, clean_pred, adv_pred, clean_conf, adv_conf in rows:
            dims = tuple(json.loads(shape))
            out.append(
                TransformExample(
                    idx=int(idx),
                    draw=int(draw),
                    clean=np.frombuffer(clean, np.float32).reshape(dims),
                    adv=np.frombuffer(adv, np.float32).reshape(dims),
                    clean_pred=int(clean_pred),
                    adv_pred=int(adv_pred),
                    clean_confidence=float(clean_conf),
                    adv_confidence=float(adv_conf),
                )
            )
        return out

    # ---- explanations ------------------------------------------------------------------
    def _has_explain_tables(self) -> bool:
        """False for a store made before the explain tables, opened read-only: such a run
        simply has no explanations."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('explain_maps', 'explain')"
        ).fetchone()
        return int(row[0]) == 2

    def explain_maps(self, key: JobKey) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
        """A job's stored (sample index, clean map (H, W), adversarial map, rank
        correlation), by sample index; empty when the job stored none."""
        if not self._has_explain_tables():
            return []
        rows = self._db.execute(
            "SELECT idx, shape, clean, adv, similarity FROM explain_maps WHERE job = ? "
            "ORDER BY idx",
            (self._job_id(key),),
        ).fetchall()
        out = []
        for idx, shape, clean, adv, similarity in rows:
            dims = tuple(json.loads(shape))
            out.append(
                (
                    int(idx),
                    np.frombuffer(clean, np.float32).reshape(dims),
                    np.frombuffer(adv, np.float32).reshape(dims),
                    float("nan") if similarity is None else float(similarity),
                )
            )
        return out

    def concepts(self) -> dict[str, ConceptRecord]:
        """model -> its stored concept record (empty for a run without explanations)."""
        if not self._has_explain_tables():
            return {}
        rows = self._db.execute('SELECT model, "values", shape, exemplars FROM explain')
        return {
            model: ConceptRecord(
                model,
                json.loads(values),
                np.frombuffer(images, np.float32).reshape(tuple(json.loads(shape))),
            )
            for model, values, shape, images in rows
        }

    def examples(self, key: JobKey) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """A job's stored (sample index, clean image, adversarial image), images (C, H, W)."""
        rows = self._db.execute(
            "SELECT idx, shape, clean, adv FROM examples WHERE job = ? ORDER BY idx",
            (self._job_id(key),),
        ).fetchall()
        out = []
        for idx, shape, clean, adv in rows:
            dims = tuple(json.loads(shape))
            out.append(
                (
                    int(idx),
                    np.frombuffer(clean, np.float32).reshape(dims),
                    np.frombuffer(adv, np.float32).reshape(dims),
                )
            )
        return out


def _write_explain(db: sqlite3.Connection, job_id: int | None, explain: JobExplain) -> None:
    """The explain rows of one job, inside the caller's transaction."""
    db.executemany(
        "INSERT INTO explain_maps VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                job_id,
                int(idx),
                _dumps(list(np.shape(clean))),
                np.asarray(clean, dtype=np.float32).tobytes(),
                np.asarray(adv, dtype=np.float32).tobytes(),
                # NaN would be stored as NULL by sqlite anyway; say so explicitly.
                None if not np.isfinite(similarity) else float(similarity),
            )
            for idx, clean, adv, similarity in explain.maps
        ],
    )
    record = explain.concepts
    if record is not None:
        images = np.asarray(record.exemplars, dtype=np.float32)
        db.execute(
            'INSERT OR REPLACE INTO explain (model, "values", shape, exemplars) '
            "VALUES (?, ?, ?, ?)",
            (
                record.model,
                _dumps(dict(record.values)),
                _dumps(list(images.shape)),
                images.tobytes(),
            ),
        )
