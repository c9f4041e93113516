"""A run's summary: the numbers of ``summary.json``, derived from the store alone.

Rows of a "detection-evasion" (adaptive) attack carry `ADAPTIVE_NOTE`: its robust accuracy
is not a bound. They stay in the worst case: every sample such an attack fools is a
misclassified input inside the eps-ball, so it can only lower the per-sample worst case,
and rightly; where it fails it submits the clean input, whose verdict (correct when clean)
every row already requires, so it cannot raise the worst case either. A worst case made of
adaptive attacks alone is no robustness bound, and its row says so.

Distribution-shift jobs give one row each (`ShiftRow` for a corruption at a severity,
`OodRow` for an out-of-distribution set) and, per model, a `ShiftSummaryRow` whose mCE
compares the model's corruption errors with the run's first model's (`shift_summary`).

Per-class disparity comes from the stored per-sample columns alone (no model is run): each
job's `PerClassRow` per class present in its labels (`per_class_rows`), its row's
``worst_class_accuracy`` and ``class_accuracy_gap``, and the worst case's worst class. The
same for distribution shift: each corruption job's `ShiftPerClassRow` per class
(`shift_per_class_rows`) and its `ShiftRow`'s worst class and gap (`shift_class_disparity`).
Both kinds of rows come from one computation (`class_numbers`), and every worst class from
one rule (`worst_class`). A class is named by the run's stored class names
(`schema.META_CLASS_NAMES`), else by its index.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robustbench_local.atomic import write_atomically
from robustbench_local.results.masking import (
    ProbeComparison,
    compare_probe,
    masking_warnings,
)
from robustbench_local.results.records import (
    FailedRow,
    OodRow,
    PerClassRow,
    ResultRow,
    RunInfo,
    ShiftPerClassRow,
    ShiftRow,
    ShiftSummaryRow,
    Summary,
    SummaryFormatError,
    WorstCaseRow,
    class_name,
)
from robustbench_local.results.schema import (
    ADAPTIVE_NOTE,
    ECE_BINS,
    META_CLASS_NAMES,
    AttackInfo,
    attack_infos,
)
from robustbench_local.results.store import JobKey, ResultsStore, ShiftKey, ShiftRecord
from uncertainty import metrics as uncertainty_metrics

__all__ = [
    "ClassNumbers",
    "WorstClass",
    "class_accuracies",
    "class_disparity",
    "class_numbers",
    "mce_baseline",
    "per_class_rows",
    "probe_comparisons",
    "read_summary",
    "robust_mask",
    "row_notes",
    "run_notes",
    "shift_class_disparity",
    "shift_per_class_rows",
    "shift_rows",
    "shift_summary",
    "summarize",
    "worst_case",
    "worst_class",
    "write_summary",
]

ONLY_ADAPTIVE_NOTE = (
    "only detection-evasion attacks at this eps: not a robustness bound (add a gradient "
    "attack such as pgd to the config)"
)


def robust_mask(samples: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: correct when clean and when attacked (robust accuracy's numerator)."""
    return (samples["clean_pred"] == samples["label"]) & (samples["adv_pred"] == samples["label"])


def class_accuracies(
    label: np.ndarray, robust: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust accuracy within each class present in ``label``.

    Args:
        label: (N,) int class labels.
        robust: (N,) bool, per sample robust (`robust_mask`, or its AND over attacks).

    Returns:
        (classes (C,) int, sorted; samples per class (C,) int; robust accuracy per class
        (C,) float64), for the C classes that have at least one sample.
    """
    classes, inverse, counts = np.unique(np.asarray(label), return_inverse=True, return_counts=True)
    weights = np.asarray(robust, dtype=np.float64)
    hits = np.bincount(inverse.ravel(), weights=weights, minlength=len(classes))
    return classes.astype(np.int64), counts.astype(np.int64), hits / counts


def class_disparity(accuracy: np.ndarray) -> tuple[int | None, float, float]:
    """(position of the worst class, its accuracy, best minus worst) of per-class
    accuracies (C,); the first position on a tie; (None, NaN, NaN) when C is 0."""
    if len(accuracy) == 0:
        return None, math.nan, math.nan
    worst = int(np.argmin(accuracy))
    return worst, float(accuracy[worst]), float(np.max(accuracy) - accuracy[worst])


@dataclass(frozen=True)
class WorstClass:
    """The worst of some classes (`worst_class`).

    Attributes:
        name: the worst class's name (the first in the given order on a tie); None when
            there is no class.
        accuracy: its accuracy (NaN without a class).
        gap: the best class's accuracy minus the worst's (NaN without a class).
        ties: the other classes with exactly the worst accuracy, in the given order.
    """

    name: str | None
    accuracy: float
    gap: float
    ties: tuple[str, ...] = ()


def worst_class(names: Sequence[str], accuracy: Sequence[float] | np.ndarray) -> WorstClass:
    """The worst class, its accuracy, the gap to the best and the classes tied with it: the
    one rule for the worst case, each shift row and the report's per-class tables.

    Args:
        names: each class's name, in label order.
        accuracy: each class's accuracy, aligned with ``names``. Ties are exact equality:
            accuracies are k / n, and equal fractions divide to equal floats.
    """
    values = np.asarray(accuracy, dtype=np.float64)
    worst, worst_accuracy, gap = class_disparity(values)
    if worst is None:
        return WorstClass(None, math.nan, math.nan)
    ties = tuple(str(names[i]) for i in np.flatnonzero(values == worst_accuracy) if i != worst)
    return WorstClass(str(names[worst]), worst_accuracy, gap, ties)


@dataclass(frozen=True)
class ClassNumbers:
    """One job's numbers within one class (`class_numbers`); NaN where the job stored no
    column to compute them from.

    Attributes:
        class_index: the class (its label).
        n: the job's samples of that class.
        accuracy: the share of them counted as hits (robust, or correct).
        ece: calibration error of the class's predictions (`schema.ECE_BINS` bins).
        mean_confidence, mean_epistemic: means over the class's inputs (epistemic in nats).
    """

    class_index: int
    n: int
    accuracy: float
    ece: float = math.nan
    mean_confidence: float = math.nan
    mean_epistemic: float = math.nan


def _class_mean(values: np.ndarray | None, mask: np.ndarray) -> float:
    return math.nan if values is None else float(np.mean(np.asarray(values)[mask]))


def _class_ece(confidence: np.ndarray | None, correct: np.ndarray, mask: np.ndarray) -> float:
    if confidence is None:
        return math.nan
    values = np.asarray(confidence, dtype=np.float64)[mask]
    if not np.all(np.isfinite(values)):  # a NULL stored: no calibration to measure
        return math.nan
    bins = uncertainty_metrics.reliability_bins(
        torch.from_numpy(values), torch.from_numpy(np.asarray(correct, bool)[mask]), n_bins=ECE_BINS
    )
    return float(bins.ece)


def class_numbers(
    label: np.ndarray,
    hits: np.ndarray,
    *,
    correct: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    epistemic: np.ndarray | None = None,
) -> list[ClassNumbers]:
    """A job's numbers within each class present in ``label``: the one per-class
    computation behind the attack rows (`per_class_rows`) and the shift rows
    (`shift_per_class_rows`).

    Args:
        label: (N,) int class labels.
        hits: (N,) bool, what accuracy counts (robust for an attack job, correct for a
            corruption job).
        correct: (N,) bool, whether the predictions whose confidence is given were right
            (what the ECE compares the confidence with); default ``hits``.
        confidence: (N,) top-label confidence of those predictions; None: no ECE and mean
            confidence (NaN).
        epistemic: (N,) epistemic uncertainty of those predictions; None: NaN.

    Returns:
        one `ClassNumbers` per class, in label order.
    """
    label = np.asarray(label)
    classes, counts, accuracy = class_accuracies(label, hits)
    correct = np.asarray(hits if correct is None else correct, dtype=bool)
    rows = []
    for c, n, acc in zip(classes, counts, accuracy, strict=True):
        mask = label == c
        rows.append(
            ClassNumbers(
                class_index=int(c),
                n=int(n),
                accuracy=float(acc),
                ece=_class_ece(confidence, correct, mask),
                mean_confidence=_class_mean(confidence, mask),
                mean_epistemic=_class_mean(epistemic, mask),
            )
        )
    return rows


def per_class_rows(
    key: JobKey, samples: Mapping[str, np.ndarray], class_names: Sequence[str] = ()
) -> list[PerClassRow]:
    """One job's numbers within each class present in its labels (`class_numbers`).

    Args:
        key: the job.
        samples: its stored per-sample columns (``store.samples(key)``), each (N,).
        class_names: the run's class names in label order (empty: classes by index).

    Returns:
        one row per class, in label order: robust accuracy, and the ECE (`ECE_BINS` bins,
        as the protocol's), mean confidence and mean epistemic uncertainty of the class's
        adversarial predictions (NaN where the job stored no such column).
    """
    label = samples["label"]
    numbers = class_numbers(
        label,
        robust_mask(samples),
        correct=samples["adv_pred"] == label,
        confidence=samples.get("adv_confidence"),
        epistemic=samples.get("adv_epistemic"),
    )
    return [
        PerClassRow(
            model=key.model,
            attack=key.attack,
            eps=key.eps,
            class_name=class_name(class_names, c.class_index),
            **asdict(c),
        )
        for c in numbers
    ]


def shift_per_class_rows(
    key: ShiftKey, samples: Mapping[str, np.ndarray], class_names: Sequence[str] = ()
) -> list[ShiftPerClassRow]:
    """One corruption job's numbers within each class present in its labels
    (`class_numbers`).

    Args:
        key: the job; a corruption (an out-of-distribution input has no true class).
        samples: its stored per-sample columns (``store.shift_samples(key)``), each (N,).
        class_names: the run's class names in label order (empty: classes by index).

    Returns:
        one row per class, in label order: accuracy on the corrupted inputs, and the ECE
        (`ECE_BINS` bins, as the shift protocol's), mean confidence and mean epistemic
        uncertainty of the class's predictions (NaN where the job stored no such column).

    Raises:
        ValueError: ``key`` is an out-of-distribution job.
    """
    if key.kind != "corruption":
        raise ValueError(f"per-class rows need true classes: {key} is no corruption job")
    label = samples["label"]
    numbers = class_numbers(
        label,
        samples["pred"] == label,
        confidence=samples.get("confidence"),
        epistemic=samples.get("epistemic"),
    )
    return [
        ShiftPerClassRow(
            model=key.model,
            corruption=key.name,
            severity=key.severity,
            class_name=class_name(class_names, c.class_index),
            **asdict(c),
        )
        for c in numbers
    ]


def shift_class_disparity(
    rows: Sequence[ShiftRow], per_class: Sequence[ShiftPerClassRow]
) -> list[ShiftRow]:
    """The corruption rows with their worst class, its accuracy, the gap to the best class
    and the classes tied with it (`worst_class`), from their jobs' per-class rows.

    Args:
        rows: corruption rows (`shift_rows`).
        per_class: their jobs' per-class rows (`shift_per_class_rows`), classes in label
            order within a job.

    Returns:
        ``rows`` in the same order; a row without per-class rows is returned unchanged.
    """
    groups: dict[tuple[str, str, int], list[ShiftPerClassRow]] = defaultdict(list)
    for c in per_class:
        groups[(c.model, c.corruption, c.severity)].append(c)
    out = []
    for row in rows:
        classes = groups.get((row.model, row.corruption, row.severity))
        if not classes:
            out.append(row)
            continue
        worst = worst_class([c.class_name for c in classes], [c.accuracy for c in classes])
        out.append(
            replace(
                row,
                worst_class=worst.name,
                worst_class_accuracy=worst.accuracy,
                class_accuracy_gap=worst.gap,
                worst_class_ties=worst.ties,
            )
        )
    return out


def worst_case(
    store: ResultsStore,
    entries: dict[str, AttackInfo] | None = None,
    class_names: Sequence[str] = (),
) -> list[WorstCaseRow]:
    """Per model and eps: robust accuracy against all attacks at once.

    A sample counts as robust only if it is classified correctly when clean and under
    every attack at that eps (per sample, not the minimum of the per-attack accuracies).
    The same per-sample verdicts, grouped by label, give the worst class.

    Args:
        store: the run's store.
        entries: attack label -> stored attack info, to mark a worst case of adaptive
            attacks alone (see the module docstring); None marks nothing.
        class_names: the run's class names in label order (empty: classes by index).

    Returns:
        one row per (model, eps), sorted by model, eps.
    """
    groups: dict[tuple[str, float], list[JobKey]] = defaultdict(list)
    for key in store.finished():
        groups[(key.model, key.eps)].append(key)
    rows = []
    for (model, eps), keys in sorted(groups.items()):
        samples = [store.samples(key) for key in keys]
        robust = np.logical_and.reduce([robust_mask(s) for s in samples])
        # Every job of a model evaluates the same inputs in the same order: one label column.
        classes, _, accuracy = class_accuracies(samples[0]["label"], robust)
        worst = worst_class([class_name(class_names, int(c)) for c in classes], accuracy)
        kinds = {entries[k.attack].kind for k in keys if k.attack in entries} if entries else set()
        rows.append(
            WorstCaseRow(
                model=model,
                eps=eps,
                accuracy=float(np.mean(robust)),
                attacks=tuple(sorted(k.attack for k in keys)),
                n=len(robust),
                notes=(ONLY_ADAPTIVE_NOTE,) if eps > 0 and kinds == {"adaptive"} else (),
                worst_class=worst.name,
                worst_class_accuracy=worst.accuracy,
                class_accuracy_gap=worst.gap,
                worst_class_ties=worst.ties,
            )
        )
    return rows


def row_notes(metrics: Mapping[str, float], entry: AttackInfo | None) -> list[str]:
    """What a reader must know to read a result row: an adaptive attack's accuracy is not
    a bound; how many saturated samples the margin fallback re-attacked (runner)."""
    notes = []
    if entry is not None and entry.kind == "adaptive":
        notes.append(ADAPTIVE_NOTE)
    covered = metrics.get("margin_fallback", 0)
    if covered:
        fooled = int(metrics.get("margin_fallback_fooled", 0))
        notes.append(
            f"margin fallback: {int(covered)} sample(s) the attack left unfooled had an "
            f"all-zero cross-entropy gradient (a saturated softmax, or no gradient at all) "
            f"and were re-attacked with the margin loss; {fooled} of them fooled"
        )
    return notes


def run_notes(results: Sequence[ResultRow], worst: Sequence[WorstCaseRow]) -> list[str]:
    """The rows' notes once each, for the report's headline and the console: one line per
    adaptive attack, one per (model, attack) that needed the margin fallback."""
    adaptive = sorted({r.attack for r in results if r.kind == "adaptive"})
    notes = [f"{attack}: {ADAPTIVE_NOTE}" for attack in adaptive]
    fallback: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results:
        covered = r.metrics.get("margin_fallback", 0)
        if covered:
            fallback[(r.model, r.attack)].append(
                f"{int(r.metric('margin_fallback_fooled'))} of {int(covered)} at eps {r.eps:g}"
            )
    for (model, attack), counts in sorted(fallback.items()):
        notes.append(
            f"{model} / {attack}: unfooled samples with an all-zero cross-entropy gradient "
            f"(a saturated softmax, or no gradient at all) were re-attacked with the margin "
            f"loss (fooled: {', '.join(counts)})"
        )
    notes += [f"{w.model}: worst case at eps {w.eps:g}: {note}" for w in worst for note in w.notes]
    return notes


def probe_comparisons(store: ResultsStore, entries: dict[str, AttackInfo]) -> list[ProbeComparison]:
    """Each model's gradient-free probe (stored with its diagnostics) against the gradient
    attacks' stored per-sample results at the probe's eps, on the probe's samples."""
    finished = store.finished()
    out = []
    for model, values in sorted(store.diagnostics().items()):
        probe = values.get("probe") or {}
        for eps, robust in zip(probe.get("eps", []), probe.get("robust", []), strict=True):
            n = len(robust)
            gradient = {
                key.attack: robust_mask(store.samples(key))[:n]
                for key in sorted(finished)
                if key.model == model
                and key.eps == eps
                and key.attack in entries
                and entries[key.attack].kind == "gradient"
            }
            if gradient:
                out.append(
                    compare_probe(
                        model, eps, np.asarray(robust, bool), gradient, probe.get("n_queries", 0)
                    )
                )
    return out


def _names(config: Mapping[str, Any], *path: str, field: str | None = None) -> list[str]:
    """The names a config lists under ``path`` (a list of names, or of tables with
    ``field``); empty when it lists none (or a word such as "all")."""
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if not isinstance(value, list):
        return []
    if field is None:
        return [str(v) for v in value if isinstance(v, str)]
    return [str(v[field]) for v in value if isinstance(v, Mapping) and field in v]


def _rank(preferred: Sequence[str], name: str) -> tuple[int, str]:
    """Sort key: config order first, then any other name alphabetically."""
    return (preferred.index(name), "") if name in preferred else (len(preferred), name)


def shift_rows(
    records: Sequence[ShiftRecord], config: Mapping[str, Any]
) -> tuple[list[ShiftRow], list[OodRow]]:
    """The shift jobs as summary rows.

    Args:
        records: ``store.shift_jobs()``.
        config: the run's stored config; its model order, and the order of its [shift]
            section's corruptions and ood lists, order the rows (names it does not list,
            such as those of a "corruptions = 'all'", follow alphabetically).

    Returns:
        (corruption rows sorted by model, corruption, severity; OOD rows sorted by model,
        OOD set).
    """
    models = _names(config, "models", field="name")
    corruptions = _names(config, "shift", "corruptions")
    ood_sets = _names(config, "shift", "ood")
    shift = [
        ShiftRow(r.key.model, r.key.name, r.key.severity, dict(r.metrics))
        for r in records
        if r.key.kind == "corruption"
    ]
    ood = [OodRow(r.key.model, r.key.name, dict(r.metrics)) for r in records if r.key.kind == "ood"]
    shift.sort(key=lambda r: (_rank(models, r.model), _rank(corruptions, r.corruption), r.severity))
    ood.sort(key=lambda r: (_rank(models, r.model), _rank(ood_sets, r.ood)))
    return shift, ood


def mce_baseline(config: Mapping[str, Any], rows: Sequence[ShiftRow] = ()) -> str | None:
    """The model every mCE is relative to: the config's first model (``[[models]]``), else
    the first model of ``rows``; None when there is neither."""
    models = _names(config, "models", field="name")
    if models:
        return models[0]
    return rows[0].model if rows else None


def _errors(rows: Sequence[ShiftRow], model: str) -> dict[str, dict[int, float]]:
    """corruption -> severity -> top-1 error of the model."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r.model == model:
            out[r.corruption][r.severity] = 1.0 - r.accuracy
    return out


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def shift_summary(rows: Sequence[ShiftRow], baseline: str | None) -> list[ShiftSummaryRow]:
    """Per model with corruption jobs: mean accuracy, mean ECE and mCE.

    mCE follows Hendrycks and Dietterich (2019): for each corruption c, the model's top-1
    errors summed over the severities, divided by the baseline model's summed over the same
    severities; mCE is the mean of that ratio over corruptions. Only the corruptions and
    severities both models have stored enter (a run in progress compares like with like).
    The baseline's own mCE is 1.0. mCE is NaN when the baseline has no corruption job in
    common with the model, or zero error summed over a corruption's severities (the ratio
    is undefined: no error to be relative to).

    Args:
        rows: corruption rows (`shift_rows`), in the order the models should come out.
        baseline: the model mCE is relative to (`mce_baseline`).

    Returns:
        one row per model, in the order of ``rows``; mean accuracy and mean ECE are plain
        means over the model's (corruption, severity) jobs (ECE: NaN left out).
    """
    base = _errors(rows, baseline) if baseline is not None else {}
    out = []
    for model in dict.fromkeys(r.model for r in rows):
        own = [r for r in rows if r.model == model]
        ratios = []
        for corruption, errors in _errors(own, model).items():
            severities = sorted(set(errors) & set(base.get(corruption, {})))
            if not severities:
                continue
            base_error = sum(base[corruption][s] for s in severities)
            error = sum(errors[s] for s in severities)
            ratios.append(error / base_error if base_error > 0 else math.nan)
        out.append(
            ShiftSummaryRow(
                model=model,
                mean_corruption_accuracy=float(np.mean([r.accuracy for r in own])),
                mean_shift_ece=_nanmean([r.metric("ece") for r in own]),
                # Any undefined ratio makes the mean undefined: leaving it out would change
                # which corruptions the number averages over without saying so.
                mce=float(np.mean(ratios)) if ratios else math.nan,
            )
        )
    return out


def summarize(store: ResultsStore) -> Summary:
    """The summary of a run: run facts, one row per job (with its attack's kind and the
    notes a reader needs), the worst case, those notes once each (`run_notes`), the
    per-model diagnostics, the gradient-free probe against the gradient attacks, the
    warnings of the gradient-masking checks, the distribution-shift rows (`shift_rows`,
    `shift_summary`, each corruption row with its worst class: `shift_class_disparity`)
    and the per-class rows of the attack and the corruption jobs (`per_class_rows`,
    `shift_per_class_rows`). Figures are added by the report."""
    meta = store.meta()
    config = meta.get("config", {})
    class_names = tuple(str(n) for n in meta.get(META_CLASS_NAMES) or ())
    run = RunInfo(
        name=config.get("run", {}).get("name"),
        dataset=config.get("run", {}).get("dataset"),
        n_examples=meta.get("n_examples"),
        seed=config.get("run", {}).get("seed"),
        norm=config.get("sweep", {}).get("norm"),
        digest=meta.get("digest"),
        complete=bool(meta.get("complete", False)),
        config_source=meta.get("config_source"),
        config=config,
        environment=meta.get("environment", {}),
        class_names=class_names,
        attack_params={label: dict(info.params) for label, info in attack_infos(meta).items()},
    )
    entries = attack_infos(meta)
    results = []
    per_class: list[PerClassRow] = []
    for r in store.jobs():
        classes = per_class_rows(r.key, store.samples(r.key), class_names)
        per_class += classes
        _, worst_accuracy, gap = class_disparity(np.array([c.accuracy for c in classes]))
        results.append(
            ResultRow(
                model=r.key.model,
                attack=r.key.attack,
                eps=r.key.eps,
                metrics={
                    **r.metrics,
                    "worst_class_accuracy": worst_accuracy,
                    "class_accuracy_gap": gap,
                },
                seconds=r.seconds,
                kind=entries[r.key.attack].kind if r.key.attack in entries else None,
                notes=tuple(row_notes(r.metrics, entries.get(r.key.attack))),
            )
        )
    probes = probe_comparisons(store, entries)
    worst = worst_case(store, entries, class_names)
    diagnostics = store.diagnostics()
    shift, ood = shift_rows(store.shift_jobs(), config)
    shift_classes: list[ShiftPerClassRow] = []
    for r in shift:  # in the rows' order: model (config order), corruption, severity
        key = ShiftKey(r.model, "corruption", r.corruption, r.severity)
        shift_classes += shift_per_class_rows(key, store.shift_samples(key), class_names)
    shift = shift_class_disparity(shift, shift_classes)
    return Summary(
        run=run,
        results=tuple(results),
        worst_case=tuple(worst),
        notes=tuple(run_notes(results, worst)),
        diagnostics=diagnostics,
        probes=tuple(probes),
        warnings=tuple(masking_warnings(results, entries, diagnostics, probes)),
        shift=tuple(shift),
        ood=tuple(ood),
        shift_summary=tuple(shift_summary(shift, mce_baseline(config, shift))),
        per_class=tuple(per_class),
        shift_per_class=tuple(shift_classes),
        failed=tuple(FailedRow(f.kind, f.key, f.error, f.attempts) for f in store.failures()),
    )


def write_summary(summary: Summary, path: Path) -> dict[str, Any]:
    """Write a summary to ``path`` as strict JSON (NaN -> null); returns what was written."""
    written = summary.to_json_dict()
    write_atomically(path, json.dumps(written, indent=2, allow_nan=False))
    return written


def read_summary(path: Path) -> Summary:
    """Read a ``summary.json``.

    Raises:
        OSError: the file cannot be read.
        SummaryFormatError: not JSON, a newer schema, or the wrong shape (the message
            names the key; the caller names the file).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Summary.from_dict(data)
    except json.JSONDecodeError as error:
        raise SummaryFormatError(f"not valid JSON ({error})") from None
