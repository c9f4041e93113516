"""The distribution-shift tables, as text cells, for both report.html and the console.

Per model the corruption summary (accuracy per severity, mean accuracy and ECE, mCE) and
per (model, OOD set) the detection numbers, written by `reports.formatting`, so the page
and the console say the same thing.

Per model, the per-class breakdown under corruption (`class_corruption_tables`): one row
per corruption, one column per class (its accuracy over the corruption's stored
severities), the worst class per corruption marked and its gap to the best class; with more
than `MAX_CLASS_COLUMNS` classes only the `WORST_SHOWN` lowest per corruption.
`class_corruption_html` renders it for the page (class and model names escaped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from reports.formatting import auroc, num, pct, three
from reports.headline import DETECTION_SCORES, SHORT, tie_note
from reports.html import Html, esc, join, swatch, table
from reports.palette import Palette
from reports.selection import (
    clean_reference,
    corruption_order,
    model_order,
    severities,
    shift_missing,
    shift_rows_at,
)
from robustbench_local.results.records import ShiftPerClassRow, Summary
from robustbench_local.results.schema import ECE_BINS, MIN_DETECTION_GROUP
from robustbench_local.results.summary import mce_baseline, worst_class

__all__ = [
    "MAX_CLASS_COLUMNS",
    "WORST_SHOWN",
    "ClassShiftTable",
    "ClassShiftTables",
    "ShiftTable",
    "class_corruption_html",
    "class_corruption_tables",
    "corruption_table",
    "ood_table",
]

# One column per class up to this many classes (10 classes x 6 corruptions reads at a
# glance); beyond it, per corruption only the WORST_SHOWN lowest classes, lowest first.
MAX_CLASS_COLUMNS = 20
WORST_SHOWN = 5


@dataclass(frozen=True)
class ShiftTable:
    """A table of text cells; column 0 is the model; ``note`` says how to read it.

    Attributes:
        headers, rows: the cells (rows empty when ``missing`` is set).
        text_columns: how many leading columns hold text (the rest are numbers).
        note: what the numbers are.
        missing: why the run has no row to show (None when it has rows).
    """

    headers: list[str]
    rows: list[list[str]]
    text_columns: int
    note: str
    missing: str | None = None


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def corruption_table(summary: Summary) -> ShiftTable:
    """Per model: clean accuracy, mean accuracy over corruptions at each severity, mean
    accuracy and ECE over all corruption jobs, and mCE relative to the first model."""
    levels = severities(summary)
    baseline = mce_baseline(summary.run.config, summary.shift)
    headers = [
        "model",
        "clean acc.",
        *(f"severity {s}" for s in levels),
        "mean corruption acc.",
        "mean ECE under shift",
        f"mCE (vs {baseline})",
    ]
    summaries = {r.model: r for r in summary.shift_summary}
    rows = []
    for model in model_order(summary):
        row = summaries.get(model)
        if row is None:
            continue
        rows.append(
            [
                model,
                pct(clean_reference(summary, model)[0]),
                *(
                    pct(_mean([r.accuracy for r in shift_rows_at(summary, model, s)]))
                    for s in levels
                ),
                pct(row.mean_corruption_accuracy),
                three(row.mean_shift_ece),
                "n/a" if math.isnan(row.mce) else f"{row.mce:.2f}",
            ]
        )
    note = (
        "Accuracy on corrupted test inputs, per severity the mean over the corruptions "
        f"stored; ECE with {ECE_BINS} bins. mCE (Hendrycks and Dietterich 2019): per "
        "corruption the model's errors summed over severities divided by the first model's "
        f"({baseline}), averaged over corruptions; below 1 is more robust, n/a where that "
        "model makes no error on a corruption. Clean accuracy: the attack jobs' clean "
        "accuracy, as in the headline."
    )
    return ShiftTable(headers, rows, 1, note, shift_missing(summary, "corruption"))


def ood_table(summary: Summary) -> ShiftTable:
    """Per (model, OOD set): n, the AUROC and the FPR95 of each detection score."""
    headers = [
        "model",
        "OOD set",
        "n",
        *(f"AUROC {SHORT[s]}" for s in DETECTION_SCORES),
        *(f"FPR95 {SHORT[s]}" for s in DETECTION_SCORES),
    ]
    rows = [
        [
            r.model,
            r.ood,
            "n/a" if math.isnan(num(r.metric("n"))) else f"{r.metric('n'):.0f}",
            *(auroc(r.metric(f"auroc_{s}")) for s in DETECTION_SCORES),
            *(pct(r.metric(f"fpr95_{s}")) for s in DETECTION_SCORES),
        ]
        for r in summary.ood
    ]
    note = (
        "Telling out-of-distribution inputs from the clean test inputs, per score: AUROC "
        "(0.5 is chance) and FPR95, the share of clean test inputs flagged at the threshold "
        "that flags 95% of the OOD inputs (lower is better); undefined where a group has "
        f"fewer than {MIN_DETECTION_GROUP} inputs."
    )
    return ShiftTable(headers, rows, 2, note, shift_missing(summary, "ood"))


@dataclass(frozen=True)
class ClassShiftTable:
    """One model's accuracy by class under corruption: text cells and which to mark.

    Attributes:
        model: the model.
        headers, rows: the cells; column 0 the corruption, then one column per class (or
            the lowest classes by rank, ``ranked``), the worst class and the gap.
        marked: per row, the columns of its worst class and of any class tied with it
            (empty where every class is equal: none is singled out).
        text_columns: the columns that hold text (the rest, but column 0, are numbers).
        ranked: True where the columns are the lowest classes by rank, not one per class.
    """

    model: str
    headers: list[str]
    rows: list[list[str]]
    marked: list[frozenset[int]]
    text_columns: frozenset[int]
    ranked: bool = False


@dataclass(frozen=True)
class ClassShiftTables:
    """Every model's `ClassShiftTable`, in model order, and how to read them.

    Attributes:
        tables: one per model with per-class corruption numbers.
        note: what the numbers are.
        missing: why there is nothing to show (None when there are tables).
    """

    tables: list[ClassShiftTable]
    note: str
    missing: str | None = None


@dataclass
class _Pooled:
    """One (model, corruption)'s classes pooled over its stored severities."""

    names: dict[int, str]
    hits: dict[int, int]
    n: dict[int, int]
    severities: set[int]

    def accuracy(self, c: int) -> float:
        return self.hits[c] / self.n[c]


def _pool(rows: Sequence[ShiftPerClassRow], model: str) -> dict[str, _Pooled]:
    """corruption -> the model's per-class counts summed over the stored severities.

    Counts, not a mean of accuracies: hits / n is an exact fraction, so classes with equal
    accuracy compare equal (the tie rule of `worst_class`). Every severity corrupts the
    same test inputs, so this is also the mean over severities.
    """
    out: dict[str, _Pooled] = {}
    for r in rows:
        if r.model != model or r.n <= 0 or math.isnan(r.accuracy):
            continue
        pooled = out.setdefault(r.corruption, _Pooled({}, {}, {}, set()))
        pooled.names.setdefault(r.class_index, r.class_name)
        pooled.hits[r.class_index] = pooled.hits.get(r.class_index, 0) + round(r.accuracy * r.n)
        pooled.n[r.class_index] = pooled.n.get(r.class_index, 0) + r.n
        pooled.severities.add(r.severity)
    return out


def _levels(values: Sequence[int]) -> str:
    """Severities as a reader writes them: "1\u20135" when contiguous, else "1, 3, 5"."""
    ordered = sorted(values)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}\u2013{ordered[-1]}"
    return ", ".join(map(str, ordered))


def _ordinal(rank: int) -> str:
    """ "lowest", "2nd lowest", ... for the ranked columns."""
    return {1: "lowest", 2: "2nd lowest", 3: "3rd lowest"}.get(rank, f"{rank}th lowest")


def _gap(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f} pts"


def _model_table(model: str, pooled: dict[str, _Pooled], order: list[str]) -> ClassShiftTable:
    all_levels = set().union(*(p.severities for p in pooled.values()))
    names: dict[int, str] = {}
    for p in pooled.values():
        for c, name in p.names.items():
            names.setdefault(c, name)
    classes = sorted(names)
    ranked = len(classes) > MAX_CLASS_COLUMNS
    shown = min(WORST_SHOWN, len(classes)) if ranked else len(classes)
    columns = [_ordinal(i + 1) for i in range(shown)] if ranked else [names[c] for c in classes]
    headers = ["corruption", *columns, "worst class", "gap to best class"]
    rows, marked = [], []
    for corruption in order:
        p = pooled[corruption]
        present = [c for c in classes if c in p.n]
        accuracy = {c: p.accuracy(c) for c in present}
        worst = worst_class([p.names[c] for c in present], [accuracy[c] for c in present])
        every = bool(worst.ties) and worst.gap == 0  # nothing to single out
        lowest = set() if every else {c for c in present if accuracy[c] == worst.accuracy}
        label = corruption
        if p.severities != all_levels:  # a run in progress: say what this row pools
            label += f" (severities {_levels(list(p.severities))})"
        if ranked:
            picked = sorted(present, key=lambda c: (accuracy[c], c))[:shown]
            cells = [f"{p.names[c]} {pct(accuracy[c])}" for c in picked]
            cells += [""] * (shown - len(picked))
            is_lowest = [c in lowest for c in picked]
        else:
            cells = [pct(accuracy[c]) if c in accuracy else "n/a" for c in classes]
            is_lowest = [c in lowest for c in classes]
        phrase = "every class equal" if every else f"{worst.name}{tie_note(worst.ties)}"
        rows.append([label, *cells, "n/a" if worst.name is None else phrase, _gap(worst.gap)])
        marked.append(frozenset(i + 1 for i, low in enumerate(is_lowest) if low))
    worst_column = 1 + shown
    text = {worst_column, *(range(1, worst_column) if ranked else ())}
    return ClassShiftTable(model, headers, rows, marked, frozenset(text), ranked)


def class_corruption_tables(summary: Summary) -> ClassShiftTables:
    """Per model with per-class corruption numbers: accuracy within each class under each
    corruption, over the corruption's stored severities, the worst class marked (the rule
    of `summary.worst_class`) and the gap to the best class.

    Args:
        summary: a run summary (its ``shift_per_class`` rows).

    Returns:
        the tables in model order, corruptions in config order; ``missing`` says why there
        are none.
    """
    rows = summary.shift_per_class
    tables = []
    for model in model_order(summary):
        pooled = _pool(rows, model)
        if pooled:
            order = [c for c in corruption_order(summary) if c in pooled]
            order += sorted(c for c in pooled if c not in order)
            tables.append(_model_table(model, pooled, order))
    levels = _levels(sorted({r.severity for r in rows}))
    counts = [r.n for r in rows]
    note = (
        "Accuracy within each class on the corrupted inputs, per corruption over its "
        f"stored severities ({levels}): every severity corrupts the same test inputs, so "
        "this is the mean of the per-severity accuracies (those are in summary.json, "
        "shift_per_class). Bold: the corruption's worst class and any class tied with it "
        "(none where every class is equal); gap to best class: the best class's accuracy "
        "minus the worst's, in percentage points."
    )
    if counts:
        low, high = min(counts), max(counts)
        each = f"{low}" if low == high else f"{low}\u2013{high}"
        note += f" Each class has {each} test inputs per severity."
    if any(t.ranked for t in tables):
        n_classes = len({r.class_index for r in rows})
        note += (
            f" With {n_classes} classes (more than {MAX_CLASS_COLUMNS}), each corruption "
            f"shows only its {WORST_SHOWN} classes of lowest accuracy, lowest first (equal "
            "accuracies in label order)."
        )
    missing = None
    if not tables:
        missing = shift_missing(summary, "corruption") or (
            "no per-class numbers are stored for the corruption jobs"
        )
    return ClassShiftTables(tables, note, missing)


def class_corruption_html(summary: Summary, palette: Palette) -> Html:
    """The per-class corruption tables for report.html: per model a heading (its name
    escaped) and a table whose class names (headers and cells) are escaped; the worst
    class's cells in bold. Empty for a run without corruption jobs."""
    if not summary.shift:
        return Html("")
    tables = class_corruption_tables(summary)
    title = Html("<h3>Accuracy by class under corruption</h3>")
    if tables.missing:
        return join([title, Html(f'<p class="note">{esc(tables.missing)}.</p>')])
    parts = [title]
    for t in tables.tables:
        rows = [
            [
                Html(f"<strong>{esc(cell)}</strong>") if i in low else cell
                for i, cell in enumerate(r)
            ]
            for r, low in zip(t.rows, t.marked, strict=True)
        ]
        parts.append(Html(f"<h4>{swatch(palette.colour(t.model))}{esc(t.model)}</h4>"))
        parts.append(table(t.headers, rows, numeric_from=1, text_columns=t.text_columns))
    parts.append(Html(f'<p class="note">{esc(tables.note)}</p>'))
    return join(parts)
