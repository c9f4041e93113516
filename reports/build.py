"""Build a run's report from its store: summary.json and a plain report.html."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from robustbench_local.store import ResultsStore
from robustbench_local.summary import summarize, write_summary

__all__ = ["build_report"]

COLUMNS = ("model", "attack", "eps", "accuracy", "mean_confidence", "mean_epistemic", "ece",
           "auroc_epistemic")


def _table(summary: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = []
    for row in summary["results"]:
        cells = []
        for c in COLUMNS:
            value = row.get(c)
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def build_report(run_dir: Path) -> dict[str, Any]:
    """Write ``summary.json`` and a plain ``report.html`` for the run in ``run_dir``."""
    run_dir = Path(run_dir)
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        summary = summarize(store)
    summary = write_summary(summary, run_dir / "summary.json")
    title = html.escape(str(summary["run"]["name"]))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1>{_table(summary)}</body></html>"
    )
    (run_dir / "report.html").write_text(page, encoding="utf-8")
    return summary
