"""The typed summary of a run: what the runner writes and every reader reads.

`Summary` is the object form of ``summary.json``: the run's facts (`RunInfo`), one
`ResultRow` per job, the worst case (`WorstCaseRow`), the probe comparisons, the figures
(`FigureEntry`), the notes and the masking warnings; for distribution shift, one `ShiftRow`
per corruption job, one `OodRow` per out-of-distribution job and one `ShiftSummaryRow` per
model; for per-class disparity, one `PerClassRow` per (job, class) and one
`ShiftPerClassRow` per (corruption job, class). ``Summary.to_dict()``
gives the JSON form (the keys ``summary.json`` has always had, plus ``schema_version``) and
``Summary.from_dict()`` reads it back, so the report, the leaderboard and the console
table read attributes instead of string keys, and a misspelt metric name fails loudly
(`ResultRow.metric` knows the metric names of `schema.METRICS`).

The shift keys ("shift", "ood", "shift_summary") were added to schema version 1 without a
new version: a file without them reads as a run without shift jobs. Likewise "per_class"
(a file without it reads as one without per-class rows), the run's "class_names" and the
worst case's per-class fields (absent: unknown, NaN); and "shift_per_class" with the shift
rows' per-class fields (a file without them reads as a run without per-class shift numbers).

Undefined numbers are NaN here and null in the JSON file (``write_summary``); reading a
file turns null back into NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from robustbench_local.results.masking import ProbeComparison
from robustbench_local.results.schema import (
    KINDS,
    METRICS,
    OOD_METRICS,
    SHIFT_METRICS,
    AttackKind,
)

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "FailedRow",
    "FigureEntry",
    "OodRow",
    "PerClassRow",
    "ResultRow",
    "RunInfo",
    "ShiftPerClassRow",
    "ShiftRow",
    "ShiftSummaryRow",
    "Summary",
    "SummaryFormatError",
    "WorstCaseRow",
    "class_name",
]

# Version 1: the keys of the first summary.json plus "schema_version". A file without the
# key has those keys too and reads as version 1.
SUMMARY_SCHEMA_VERSION = 1

_ROW_FIELDS = ("model", "attack", "eps", "seconds", "kind", "notes")
_SHIFT_FIELDS = ("model", "corruption", "severity")
_OOD_FIELDS = ("model", "ood")
_PER_CLASS_FIELDS = ("model", "attack", "eps", "class", "class_name", "n", "accuracy")
_SHIFT_PER_CLASS_FIELDS = (
    "model",
    "corruption",
    "severity",
    "class",
    "class_name",
    "n",
    "accuracy",
)
# A row's worst class (`WorstCaseRow`, `ShiftRow`): name, accuracy, gap to the best, ties.
_DISPARITY_FIELDS = (
    "worst_class",
    "worst_class_accuracy",
    "class_accuracy_gap",
    "worst_class_ties",
)


class SummaryFormatError(ValueError):
    """A summary.json that this version cannot read: the message says what and what to do."""


def _number(value: object) -> float:
    """A stored number as float; null (an undefined number in JSON) is NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SummaryFormatError(f"expected a number or null, got {value!r}")
    return float(value)


def _require(data: object, where: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SummaryFormatError(f"{where}: expected an object, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise SummaryFormatError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    return data


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    """An int field of a JSON row (a bool or a float is refused)."""
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SummaryFormatError(f"{where}.{key}: expected an int, got {value!r}")
    return value


def _disparity(data: Mapping[str, Any]) -> dict[str, Any]:
    """A row's worst-class fields (`_DISPARITY_FIELDS`); absent: unknown (None, NaN, ())."""
    worst = data.get("worst_class")
    return {
        "worst_class": None if worst is None else str(worst),
        "worst_class_accuracy": _number(data.get("worst_class_accuracy")),
        "class_accuracy_gap": _number(data.get("class_accuracy_gap")),
        "worst_class_ties": tuple(str(c) for c in data.get("worst_class_ties") or ()),
    }


def _class_numbers(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The class fields a per-class row of any job has (``"class"`` is ``class_index``)."""
    return {
        "class_index": _int(data, "class", where),
        "class_name": str(data["class_name"]),
        "n": _int(data, "n", where),
        "accuracy": _number(data["accuracy"]),
        "ece": _number(data.get("ece")),
        "mean_confidence": _number(data.get("mean_confidence")),
        "mean_epistemic": _number(data.get("mean_epistemic")),
    }


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list | tuple):
        raise SummaryFormatError(f"{where}.{key}: expected a list, got {type(value).__name__}")
    return list(value)


def class_name(names: Sequence[str], index: int) -> str:
    """A class's name: ``names[index]`` where the run stored names, else the index ("3")."""
    return str(names[index]) if 0 <= index < len(names) else str(index)


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


@dataclass(frozen=True)
class RunInfo:
    """The run's facts: what was evaluated, where, and whether the run finished.

    Attributes:
        name, dataset, seed, norm: from the config's [run] and [sweep] sections.
        n_examples: evaluated test examples (None before the runner stored it).
        digest: the config's digest (a resume must match it).
        complete: True once every planned job is stored.
        config_source: the config file's path, or "<default>".
        config: the resolved config, as stored.
        environment: versions, device and machine of the run.
        class_names: the dataset's class names in label order, where the run stored them
            (`schema.META_CLASS_NAMES`); empty otherwise (readers use `class_name`).
        attack_params: attack label -> the parameters it ran with (`schema.AttackInfo`:
            defaults and the config's choices); empty for runs made before they were stored.
    """

    name: str | None = None
    dataset: str | None = None
    n_examples: int | None = None
    seed: int | None = None
    norm: str | None = None
    digest: str | None = None
    complete: bool = False
    config_source: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    attack_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def class_name(self, index: int) -> str:
        """A class's name: the stored one, else its index ("3")."""
        return class_name(self.class_names, index)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["class_names"] = list(self.class_names)
        out["attack_params"] = {k: dict(v) for k, v in self.attack_params.items()}
        return out

    @classmethod
    def from_dict(cls, data: object) -> RunInfo:
        data = _require(data, "run", ())
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("config", "environment", "attack_params"):
            values[key] = values.get(key) or {}
            if not isinstance(values[key], Mapping):
                raise SummaryFormatError(f"run.{key}: expected an object")
        values["complete"] = bool(values.get("complete", False))
        names = values.get("class_names") or []
        if not isinstance(names, list | tuple):
            raise SummaryFormatError("run.class_names: expected a list of names")
        values["class_names"] = tuple(str(n) for n in names)
        return cls(**values)


def _row_metrics(
    data: Mapping[str, Any],
    row_fields: Sequence[str] = _ROW_FIELDS,
    known: Sequence[str] = METRICS,
) -> dict[str, float]:
    """The metrics of a flat JSON row. A known metric must be a number (or null); an
    unknown key that holds a number is kept, anything else ignored, so that a newer
    writer's extra column does not break this reader."""
    out = {}
    for key, value in data.items():
        if key in row_fields:
            continue
        numeric = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        if key in known or numeric:  # _number rejects a known metric that is no number
            out[key] = _number(value)
    return out


def _known_metric(metrics: Mapping[str, float], name: str, known: Sequence[str]) -> float:
    """One metric of a row (NaN when the row does not have it); unknown names raise."""
    if name not in known:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(known)}")
    return float(metrics.get(name, math.nan))


@dataclass(frozen=True)
class ResultRow:
    """One job's numbers: a model under one attack at one eps.

    Attributes:
        model, attack, eps: the job (attack is the config label).
        metrics: metric name (`schema.METRICS`) -> value; NaN where undefined.
        seconds: the job's wall time.
        kind: the attack's kind ("gradient", "gradient-free", "adaptive"), None if unknown.
        notes: what a reader must know to read the row (adaptive attack, margin fallback).
    """

    model: str
    attack: str
    eps: float
    metrics: Mapping[str, float] = field(default_factory=dict)
    seconds: float | None = None
    kind: AttackKind | None = None
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> float:
        """One metric (NaN when this row does not have it); unknown names raise KeyError."""
        return _known_metric(self.metrics, name, METRICS)

    @property
    def accuracy(self) -> float:
        """Robust accuracy over all N samples (correct when clean and when attacked)."""
        return self.metric("accuracy")

    @property
    def n(self) -> int:
        """Samples the job evaluated (0 if unknown)."""
        value = self.metric("n")
        return 0 if math.isnan(value) else int(value)

    def value(self, key: str) -> object:
        """A column of the flat JSON row: a field (model, attack, eps, ...) or a metric."""
        return getattr(self, key) if key in _ROW_FIELDS else self.metric(key)

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON row of summary.json: fields and metrics side by side."""
        return {
            "model": self.model,
            "attack": self.attack,
            "eps": self.eps,
            **self.metrics,
            "seconds": self.seconds,
            "kind": self.kind,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: object) -> ResultRow:
        data = _require(data, "results[]", ("model", "attack", "eps"))
        kind = data.get("kind")
        if kind is not None and kind not in KINDS:
            raise SummaryFormatError(f"results[].kind: {kind!r} is not one of {KINDS}")
        seconds = data.get("seconds")
        return cls(
            model=str(data["model"]),
            attack=str(data["attack"]),
            eps=_number(data["eps"]),
            metrics=_row_metrics(data),
            seconds=None if seconds is None else _number(seconds),
            kind=kind,
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


@dataclass(frozen=True)
class WorstCaseRow:
    """Robust accuracy of a model at one eps against all its attacks at once (per sample).

    Attributes:
        model, eps: where.
        accuracy: the fraction of samples correct when clean and under every attack.
        attacks: the attack labels combined.
        n: samples.
        notes: e.g. that a worst case of adaptive attacks alone is no bound.
        worst_class: the name of the class with the lowest worst-case robust accuracy
            (the lowest index on a tie); None when unknown (an older file).
        worst_class_accuracy: that class's worst-case robust accuracy.
        class_accuracy_gap: the best class's minus the worst class's.
        worst_class_ties: the other classes with exactly that accuracy, in label order (a
            report that names one worst class must not hide that others share it).
    """

    model: str
    eps: float
    accuracy: float
    attacks: tuple[str, ...] = ()
    n: int = 0
    notes: tuple[str, ...] = ()
    worst_class: str | None = None
    worst_class_accuracy: float = math.nan
    class_accuracy_gap: float = math.nan
    worst_class_ties: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "eps": self.eps,
            "accuracy": self.accuracy,
            "attacks": list(self.attacks),
            "n": self.n,
            "notes": list(self.notes),
            "worst_class": self.worst_class,
            "worst_class_accuracy": self.worst_class_accuracy,
            "class_accuracy_gap": self.class_accuracy_gap,
            "worst_class_ties": list(self.worst_class_ties),
        }

    @classmethod
    def from_dict(cls, data: object) -> WorstCaseRow:
        data = _require(data, "worst_case[]", ("model", "eps", "accuracy"))
        return cls(
            model=str(data["model"]),
            eps=_number(data["eps"]),
            accuracy=_number(data["accuracy"]),
            attacks=tuple(str(a) for a in data.get("attacks") or ()),
            n=int(data.get("n") or 0),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            **_disparity(data),
        )


def _class_dict(row: PerClassRow | ShiftPerClassRow) -> dict[str, Any]:
    """The class part of a per-class JSON row (the class index under ``"class"``)."""
    return {
        "class": row.class_index,
        "class_name": row.class_name,
        "n": row.n,
        "accuracy": row.accuracy,
        "ece": row.ece,
        "mean_confidence": row.mean_confidence,
        "mean_epistemic": row.mean_epistemic,
    }


@dataclass(frozen=True)
class PerClassRow:
    """One job's numbers within one class (see `summary.per_class_rows`).

    Attributes:
        model, attack, eps: the job.
        class_index: the class (its label); ``"class"`` in the JSON row.
        class_name: its name (`RunInfo.class_name`).
        n: the job's samples of that class.
        accuracy: robust accuracy within the class (correct when clean and when attacked).
        ece: calibration error of the adversarial predictions within the class
            (`schema.ECE_BINS` bins).
        mean_confidence, mean_epistemic: means over the class's adversarial inputs
            (epistemic in nats).
    """

    model: str
    attack: str
    eps: float
    class_index: int
    class_name: str
    n: int
    accuracy: float
    ece: float = math.nan
    mean_confidence: float = math.nan
    mean_epistemic: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "attack": self.attack, "eps": self.eps, **_class_dict(self)}

    @classmethod
    def from_dict(cls, data: object) -> PerClassRow:
        data = _require(data, "per_class[]", _PER_CLASS_FIELDS)
        return cls(
            model=str(data["model"]),
            attack=str(data["attack"]),
            eps=_number(data["eps"]),
            **_class_numbers(data, "per_class[]"),
        )


@dataclass(frozen=True)
class ShiftPerClassRow:
    """One corruption job's numbers within one class (see `summary.shift_per_class_rows`).

    Attributes:
        model, corruption, severity: the job.
        class_index: the class (its label); ``"class"`` in the JSON row.
        class_name: its name (`RunInfo.class_name`).
        n: the job's samples of that class.
        accuracy: accuracy within the class on the corrupted inputs.
        ece: calibration error of the class's predictions (`schema.ECE_BINS` bins).
        mean_confidence, mean_epistemic: means over the class's corrupted inputs
            (epistemic in nats).
    """

    model: str
    corruption: str
    severity: int
    class_index: int
    class_name: str
    n: int
    accuracy: float
    ece: float = math.nan
    mean_confidence: float = math.nan
    mean_epistemic: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        job = {"model": self.model, "corruption": self.corruption, "severity": self.severity}
        return {**job, **_class_dict(self)}

    @classmethod
    def from_dict(cls, data: object) -> ShiftPerClassRow:
        data = _require(data, "shift_per_class[]", _SHIFT_PER_CLASS_FIELDS)
        return cls(
            model=str(data["model"]),
            corruption=str(data["corruption"]),
            severity=_int(data, "severity", "shift_per_class[]"),
            **_class_numbers(data, "shift_per_class[]"),
        )


@dataclass(frozen=True)
class ShiftRow:
    """One corruption job's numbers: a model on one corruption at one severity.

    Attributes:
        model, corruption, severity: the job (severity 1..5).
        metrics: metric name (`schema.SHIFT_METRICS`) -> value; NaN where undefined.
        worst_class: the name of the class with the lowest accuracy on the corrupted inputs
            (the lowest index on a tie); None when unknown (no per-class numbers, an older
            file). The per-class fields are those of `WorstCaseRow`, from the job's
            `ShiftPerClassRow` rows (`summary.shift_class_disparity`).
        worst_class_accuracy: that class's accuracy.
        class_accuracy_gap: the best class's accuracy minus the worst class's.
        worst_class_ties: the other classes with exactly that accuracy, in label order.
    """

    model: str
    corruption: str
    severity: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    worst_class: str | None = None
    worst_class_accuracy: float = math.nan
    class_accuracy_gap: float = math.nan
    worst_class_ties: tuple[str, ...] = ()

    def metric(self, name: str) -> float:
        """One metric (NaN when this row does not have it); unknown names raise KeyError."""
        return _known_metric(self.metrics, name, SHIFT_METRICS)

    @property
    def accuracy(self) -> float:
        """Accuracy on the corrupted inputs."""
        return self.metric("accuracy")

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON row: model, corruption, severity and the metrics side by side, then
        the per-class fields where the worst class is known (a row without per-class
        numbers keeps the row it always had)."""
        out = {
            "model": self.model,
            "corruption": self.corruption,
            "severity": self.severity,
            **self.metrics,
        }
        if self.worst_class is not None:
            out |= {
                "worst_class": self.worst_class,
                "worst_class_accuracy": self.worst_class_accuracy,
                "class_accuracy_gap": self.class_accuracy_gap,
                "worst_class_ties": list(self.worst_class_ties),
            }
        return out

    @classmethod
    def from_dict(cls, data: object) -> ShiftRow:
        data = _require(data, "shift[]", _SHIFT_FIELDS)
        return cls(
            model=str(data["model"]),
            corruption=str(data["corruption"]),
            severity=_int(data, "severity", "shift[]"),
            metrics=_row_metrics(data, (*_SHIFT_FIELDS, *_DISPARITY_FIELDS), SHIFT_METRICS),
            **_disparity(data),
        )


@dataclass(frozen=True)
class OodRow:
    """One out-of-distribution job's numbers: how well a model's scores flag one OOD set.

    Attributes:
        model, ood: the job.
        metrics: metric name (`schema.OOD_METRICS`) -> value; NaN where undefined.
    """

    model: str
    ood: str
    metrics: Mapping[str, float] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        """One metric (NaN when this row does not have it); unknown names raise KeyError."""
        return _known_metric(self.metrics, name, OOD_METRICS)

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON row: model, ood and the metrics side by side."""
        return {"model": self.model, "ood": self.ood, **self.metrics}

    @classmethod
    def from_dict(cls, data: object) -> OodRow:
        data = _require(data, "ood[]", _OOD_FIELDS)
        return cls(
            model=str(data["model"]),
            ood=str(data["ood"]),
            metrics=_row_metrics(data, _OOD_FIELDS, OOD_METRICS),
        )


@dataclass(frozen=True)
class ShiftSummaryRow:
    """A model's corruption numbers in one line (see `summary.shift_summary`).

    Attributes:
        model: the model.
        mean_corruption_accuracy: accuracy averaged over its (corruption, severity) jobs.
        mean_shift_ece: ECE averaged over the same jobs.
        mce: mean corruption error relative to the run's first model (Hendrycks and
            Dietterich 2019); 1.0 for that model, NaN where undefined.
    """

    model: str
    mean_corruption_accuracy: float
    mean_shift_ece: float
    mce: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: object) -> ShiftSummaryRow:
        names = [f.name for f in fields(cls)]
        data = _require(data, "shift_summary[]", names)
        return cls(str(data["model"]), *(_number(data[k]) for k in names[1:]))


@dataclass(frozen=True)
class FigureEntry:
    """A drawn figure: its id, title, PNG path (relative to the run folder) and caption."""

    id: str
    title: str
    path: str
    caption: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "path": self.path, "caption": self.caption}

    @classmethod
    def from_dict(cls, data: object) -> FigureEntry:
        data = _require(data, "figures[]", ("id", "title", "path", "caption"))
        return cls(*(str(data[k]) for k in ("id", "title", "path", "caption")))


def _probe_to_dict(probe: ProbeComparison) -> dict[str, Any]:
    return {f.name: getattr(probe, f.name) for f in fields(probe)} | {
        "attacks": list(probe.attacks)
    }


def _probe_from_dict(data: object) -> ProbeComparison:
    names = [f.name for f in fields(ProbeComparison)]
    data = _require(data, "probes[]", [n for n in names if n != "n_queries"])
    return ProbeComparison(
        model=str(data["model"]),
        eps=_number(data["eps"]),
        n=int(data["n"]),
        probe_accuracy=_number(data["probe_accuracy"]),
        gradient_accuracy=_number(data["gradient_accuracy"]),
        probe_only=int(data["probe_only"]),
        gradient_only=int(data["gradient_only"]),
        attacks=tuple(str(a) for a in data["attacks"]),
        n_queries=int(data.get("n_queries") or 0),
    )


@dataclass(frozen=True)
class FailedRow:
    """A task that raised on every attempt; the next run of the same command retries it.

    Attributes:
        kind: "job", "diagnostics" or "shift".
        key: the task's key fields (model, attack, eps for a job).
        error: the last attempt's exception, "Type: message" on one line.
        attempts: how many times it ran.
    """

    kind: str
    key: Mapping[str, Any]
    error: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": dict(self.key),
            "error": self.error,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: object) -> FailedRow:
        data = _require(data, "failed[]", ("kind", "key", "error", "attempts"))
        return cls(str(data["kind"]), dict(data["key"]), str(data["error"]), int(data["attempts"]))


@dataclass(frozen=True)
class Summary:
    """A run's summary (see the module docstring); ``to_dict`` is summary.json's content.

    Attributes:
        run: the run's facts.
        results: one row per stored job, in store order.
        worst_case: per model and eps, sorted by model, eps.
        notes: the rows' notes once each (for the headline and the console).
        diagnostics: model -> the numbers of the gradient diagnostics (free-form).
        probes: the gradient-free probe against the gradient attacks.
        figures: the drawn figures (empty until the report draws them).
        warnings: the gradient-masking checks that failed, as sentences.
        shift: one row per corruption job, by model (config order), corruption, severity.
        ood: one row per out-of-distribution job, by model, then OOD set.
        shift_summary: per model with corruption jobs: mean accuracy, ECE, mCE.
        per_class: per job and class (classes in label order), in store order of the jobs.
        shift_per_class: per corruption job and class (classes in label order), the jobs
            in the order of ``shift``.
        failed: the tasks that failed on every attempt (the run is not complete).
    """

    run: RunInfo
    results: tuple[ResultRow, ...] = ()
    worst_case: tuple[WorstCaseRow, ...] = ()
    notes: tuple[str, ...] = ()
    diagnostics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    probes: tuple[ProbeComparison, ...] = ()
    figures: tuple[FigureEntry, ...] = ()
    warnings: tuple[str, ...] = ()
    shift: tuple[ShiftRow, ...] = ()
    ood: tuple[OodRow, ...] = ()
    shift_summary: tuple[ShiftSummaryRow, ...] = ()
    per_class: tuple[PerClassRow, ...] = ()
    shift_per_class: tuple[ShiftPerClassRow, ...] = ()
    failed: tuple[FailedRow, ...] = ()

    def rows_of(self, model: str) -> list[ResultRow]:
        """The model's result rows, in store order."""
        return [r for r in self.results if r.model == model]

    def with_figures(self, figures: Sequence[FigureEntry]) -> Summary:
        return replace(self, figures=tuple(figures))

    def to_json_dict(self) -> dict[str, Any]:
        """The content of summary.json: `to_dict` with NaN and infinities as null, so the
        file is strict JSON that every reader parses."""
        return _strict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, NaN kept (see `to_json_dict`)."""
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "run": self.run.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "worst_case": [w.to_dict() for w in self.worst_case],
            "notes": list(self.notes),
            "diagnostics": {m: dict(d) for m, d in self.diagnostics.items()},
            "probes": [_probe_to_dict(p) for p in self.probes],
            "figures": [f.to_dict() for f in self.figures],
            "warnings": list(self.warnings),
            "shift": [r.to_dict() for r in self.shift],
            "ood": [r.to_dict() for r in self.ood],
            "shift_summary": [r.to_dict() for r in self.shift_summary],
            "per_class": [r.to_dict() for r in self.per_class],
            "shift_per_class": [r.to_dict() for r in self.shift_per_class],
            "failed": [r.to_dict() for r in self.failed],
        }

    @classmethod
    def from_dict(cls, data: object) -> Summary:
        """Read a summary.json's content.

        Raises:
            SummaryFormatError: a newer schema version, or content of the wrong shape; the
                message names the key.
        """
        data = _require(data, "summary", ("run", "results"))
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise SummaryFormatError(f"schema_version: expected a positive int, got {version!r}")
        if version > SUMMARY_SCHEMA_VERSION:
            raise SummaryFormatError(
                f"schema_version {version} is newer than this robustbench-local reads "
                f"({SUMMARY_SCHEMA_VERSION}): upgrade it, or rebuild the summary from the "
                "run's results.sqlite with `rbl report RUN_DIR`"
            )
        diagnostics = data.get("diagnostics") or {}
        if not isinstance(diagnostics, Mapping) or not all(
            isinstance(v, Mapping) for v in diagnostics.values()
        ):
            raise SummaryFormatError("diagnostics: expected an object of objects")
        return cls(
            run=RunInfo.from_dict(data["run"]),
            results=tuple(ResultRow.from_dict(r) for r in _list(data, "results", "summary")),
            worst_case=tuple(
                WorstCaseRow.from_dict(w) for w in _list(data, "worst_case", "summary")
            ),
            notes=tuple(str(n) for n in _list(data, "notes", "summary")),
            diagnostics=diagnostics,
            probes=tuple(_probe_from_dict(p) for p in _list(data, "probes", "summary")),
            figures=tuple(FigureEntry.from_dict(f) for f in _list(data, "figures", "summary")),
            warnings=tuple(str(w) for w in _list(data, "warnings", "summary")),
            shift=tuple(ShiftRow.from_dict(r) for r in _list(data, "shift", "summary")),
            ood=tuple(OodRow.from_dict(r) for r in _list(data, "ood", "summary")),
            shift_summary=tuple(
                ShiftSummaryRow.from_dict(r) for r in _list(data, "shift_summary", "summary")
            ),
            per_class=tuple(PerClassRow.from_dict(r) for r in _list(data, "per_class", "summary")),
            shift_per_class=tuple(
                ShiftPerClassRow.from_dict(r) for r in _list(data, "shift_per_class", "summary")
            ),
            failed=tuple(FailedRow.from_dict(r) for r in _list(data, "failed", "summary")),
        )
