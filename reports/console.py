"""The run's tables for a terminal, from the same headline numbers as the report page.

`rbl run` prints these (the CLI renders them); as they come from `headline.headline` at
`selection.chosen_eps`, written by `reports.formatting`, the console and the page agree. A
run with distribution-shift jobs adds the page's corruption and OOD tables
(`reports.shift_tables`) and its adversarial-against-natural-shift sentence; a run with
attacks over random transformations (pgd-eot) the page's table of them
(`reports.transform_tables`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reports.formatting import auroc, fmt_eps, pct, three
from reports.headline import DETECTION_SCORES, SHORT, attack_label, headline, shift_comparison
from reports.selection import attack_order, chosen_eps_rule, result
from reports.shift_tables import ShiftTable, corruption_table, ood_table
from reports.transform_tables import TITLE as TRANSFORM_TITLE
from reports.transform_tables import transform_table
from robustbench_local.results.records import Summary

__all__ = ["ADAPTIVE_MARK", "ConsoleReport", "TextTable", "console_report"]

ADAPTIVE_MARK = " *"  # a detection-evasion attack's accuracy is no robustness bound
WORST = "worst"


@dataclass(frozen=True)
class TextTable:
    """A table of text cells; the first ``text_columns`` columns are left-aligned."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    text_columns: int


@dataclass(frozen=True)
class ConsoleReport:
    """What `rbl run` prints: robust accuracy by eps, the headline, notes and warnings; with
    shift jobs, the corruption and OOD tables and the sentence comparing adversarial and
    natural shift (None without them). `tables` lists every table in print order."""

    chosen_eps: float | None
    accuracy: TextTable
    headline: TextTable
    notes: list[str]
    warnings: list[str]
    shift: TextTable | None = None
    ood: TextTable | None = None
    shift_comparison: str | None = None
    transforms: TextTable | None = None

    @property
    def tables(self) -> list[TextTable]:
        """The tables to print, in order (the shift and EOT ones only when the run has rows)."""
        tables = (self.accuracy, self.headline, self.transforms, self.shift, self.ood)
        return [t for t in tables if t is not None]


def _text_table(title: str, shift: ShiftTable) -> TextTable | None:
    if shift.missing:
        return None
    return TextTable(title, shift.headers, shift.rows, shift.text_columns)


def console_report(summary: Summary, eps: float | None = None) -> ConsoleReport:
    """The console's tables of a run summary.

    Args:
        summary: a run summary.
        eps: the eps of the headline's attack-specific columns; default
            `selection.chosen_eps`, as the page.

    Returns:
        A robust-accuracy table with one row per (model, attack) and a worst-case row per
        model, adaptive attacks marked with ``ADAPTIVE_MARK``; the page's headline table (per
        model: strongest attack at the chosen eps, ECE, detection AUROC); notes and warnings;
        the page's shift tables and sentence when the run has shift jobs.
    """
    head = headline(summary, eps)
    run = summary.run
    facts = ", ".join(
        str(v) for v in (run.dataset, f"n={run.n_examples}", run.norm) if v is not None
    )
    adaptive = {r.attack for r in summary.results if r.kind == "adaptive"}
    rows = []
    for row in head.rows:
        for attack in attack_order(summary):
            by_eps = [result(summary, row.model, attack, e) for e in head.eps]
            if not any(by_eps):
                continue
            label = attack + (ADAPTIVE_MARK if attack in adaptive else "")
            cells = ["" if r is None else pct(r.accuracy) for r in by_eps]
            rows.append([row.model, label, *cells])
        worst = [pct(row.worst_accuracy[e]) if e in row.worst_accuracy else "" for e in head.eps]
        rows.append([row.model, WORST, *worst])
    accuracy = TextTable(
        title=f"robust accuracy by eps: {run.name} ({facts})",
        headers=["model", "attack", *(fmt_eps(e) for e in head.eps)],
        rows=rows,
        text_columns=2,
    )
    at = f"eps {fmt_eps(head.chosen_eps)}" if head.chosen_eps is not None else "(no eps > 0)"
    headline_table = TextTable(
        title=(
            f"headline at {at}: each model's strongest attack there ({chosen_eps_rule()}); "
            "AUROC: telling attacked from clean inputs, 0.5 is chance"
        ),
        headers=[
            "model",
            "strongest attack",
            "clean acc.",
            "ECE clean",
            "ECE attacked",
            *(f"AUROC {SHORT[s]}" for s in DETECTION_SCORES),
        ],
        rows=[
            [
                row.model,
                attack_label(summary, row.attack),
                pct(row.clean_accuracy),
                three(row.ece_clean),
                three(row.ece_adv),
                *(auroc(row.auroc.get(s, math.nan)) for s in DETECTION_SCORES),
            ]
            for row in head.rows
        ],
        text_columns=2,
    )
    return ConsoleReport(
        chosen_eps=head.chosen_eps,
        accuracy=accuracy,
        headline=headline_table,
        notes=list(summary.notes),
        warnings=list(summary.warnings),
        shift=_text_table(
            "accuracy under corruption: per severity the mean over corruptions; mCE below 1 "
            "is more robust than the first model",
            corruption_table(summary),
        ),
        ood=_text_table(
            "out-of-distribution detection: AUROC (0.5 is chance); FPR95 = share of clean "
            "inputs flagged at the threshold that flags 95% of the OOD ones (lower is better)",
            ood_table(summary),
        ),
        shift_comparison=shift_comparison(summary, head),
        transforms=_transform_text_table(summary),
    )


def _transform_text_table(summary: Summary) -> TextTable | None:
    """The page's table of the EOT jobs, narrowed for a terminal: each attack's
    transformations move from a column into the title."""
    found = transform_table(summary)
    if found is None:
        return None
    described = "; ".join(f"{a}: {d}" for a, d in {r[1]: r[3] for r in found.rows}.items())
    title = (
        f"{TRANSFORM_TITLE.lower()} ({described}), among the correctly classified inputs: "
        f"robust success = the adversarial example still fools on \u2265 {found.threshold} "
        "of fresh random draws; transf. alone = the clean input does; mean fooled = the "
        "mean share of draws the adversarial example fools on"
    )
    headers = ["model", "attack", "eps", "attack success", "robust success"]
    headers += ["transf. alone", "mean fooled"]
    rows = [[*r[:3], *r[4:]] for r in found.rows]
    return TextTable(title, headers, rows, text_columns=2)
