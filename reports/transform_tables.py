"""The table of the attacks over random transformations (kind "eot", pgd-eot), for the page
and the console: per model, EOT attack and eps > 0, the plain attack success rate beside
the share of examples that stay adversarial under fresh random transformations.

Every number is a stored metric of the job (`schema.TRANSFORM_METRICS`), written by
`reports.formatting`; the transformations and the robust fraction come from the run's
config (`selection.transform_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.formatting import fmt_eps, pct
from reports.selection import model_order, transform_attacks, transform_params
from robustbench_local.results.records import ResultRow, Summary

__all__ = ["TITLE", "TransformTable", "transform_rows", "transform_table"]

TITLE = "Adversarial examples under random transformations"


@dataclass(frozen=True)
class TransformTable:
    """The table: its headers, one row of text cells per EOT job (model and attack labels
    unescaped: the page escapes them) and the note that explains the columns.

    Attributes:
        headers: the column headers.
        rows: the cells, the model first.
        note: what the columns mean.
        threshold: the robust fraction as the headers write it ("90.0%"), or "the row's
            share" when the attacks differ (each row's transformations then name theirs).
        text_columns: the leading columns that hold text (the rest are numbers).
    """

    headers: list[str]
    rows: list[list[str]]
    note: str
    threshold: str
    text_columns: int = 4


def transform_rows(summary: Summary) -> list[ResultRow]:
    """The EOT jobs at eps > 0 (at eps 0 the attack cannot move the input), in model, attack
    and eps order."""
    attacks = transform_attacks(summary)
    models = model_order(summary)
    rows = [r for r in summary.results if r.attack in attacks and r.eps > 0]
    return sorted(rows, key=lambda r: (models.index(r.model), attacks.index(r.attack), r.eps))


def transform_table(summary: Summary) -> TransformTable | None:
    """The table of the run's EOT jobs at eps > 0; None when it has none."""
    rows = transform_rows(summary)
    if not rows:
        return None
    params = {a: transform_params(summary, a) for a in {r.attack for r in rows}}
    fractions = {p.robust_fraction for p in params.values()}
    shared = pct(next(iter(fractions))) if len(fractions) == 1 else None
    threshold = shared or "the row's share"
    cells = []
    for r in rows:
        p = params[r.attack]
        draws = f"{p.described}; {p.eval_draws} draws"
        if shared is None:
            draws += f", robust: \u2265 {pct(p.robust_fraction)}"
        cells.append(
            [
                r.model,
                r.attack,
                fmt_eps(r.eps),
                draws,
                pct(r.metric("attack_success_rate")),
                pct(r.metric("transform_success_rate")),
                pct(r.metric("transform_clean_error_rate")),
                pct(r.metric("transform_fooled_mean")),
            ]
        )
    headers = [
        "model",
        "attack",
        "eps",
        "transformations",
        "attack success",
        f"robust success (\u2265 {threshold} of draws)",
        "transformations alone",
        "mean share of draws fooled",
    ]
    note = (
        "Among the correctly classified inputs: attack success is the share whose adversarial "
        "example fools the model as attacked (no transformation); robust success the share "
        f"whose example still fools it on at least {threshold} of fresh random "
        "transformations (drawn apart from those the attack averaged over); transformations "
        "alone the same share for the clean input, so it tells what the transformations do "
        "without the attack; mean share of draws fooled averages, over those inputs, the "
        "share of draws on which the adversarial example fools the model."
    )
    return TransformTable(headers, cells, note, threshold)
