"""The distribution-shift tables, as text cells, for both report.html and the console.

Per model the corruption summary (accuracy per severity, mean accuracy and ECE, mCE) and
per (model, OOD set) the detection numbers, written by `reports.formatting`, so the page
and the console say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reports.formatting import auroc, num, pct, three
from reports.headline import DETECTION_SCORES, SHORT
from reports.selection import (
    clean_reference,
    model_order,
    severities,
    shift_missing,
    shift_rows_at,
)
from robustbench_local.results.records import Summary
from robustbench_local.results.schema import ECE_BINS, MIN_DETECTION_GROUP
from robustbench_local.results.summary import mce_baseline

__all__ = ["ShiftTable", "corruption_table", "ood_table"]


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
