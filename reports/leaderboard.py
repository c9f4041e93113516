"""A leaderboard across the runs under a folder: one row per (run, model).

Each run folder is read from its ``results.sqlite`` (read-only), else from its
``summary.json``. Runs are grouped by dataset and norm, since numbers across either are not
comparable; within a group the columns are the worst-case robust accuracy at every positive
eps all its runs share (or, when they share none, at every eps any of them has), and the
ECE / detection AUROC columns use the eps chosen from the shared ones by
`selection.chosen_eps` (each run's own chosen eps when none is shared). Rows are ranked by
the worst-case accuracy at the largest shared eps; runs that share no eps are not ranked.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from reports.formatting import auroc, fmt_eps, pct, three
from reports.headline import DETECTION_SCORES, SHORT, ModelRow, headline
from reports.html import Html, esc, join, page, table
from reports.selection import chosen_eps, eps_values
from robustbench_local.atomic import write_atomically
from robustbench_local.results.records import Summary, SummaryFormatError
from robustbench_local.results.store import ResultsStore, StoreError
from robustbench_local.results.summary import read_summary, summarize

__all__ = ["RunEntry", "build_leaderboard", "load_runs"]

LEADERBOARD = "leaderboard.html"


@dataclass(frozen=True)
class RunEntry:
    """One run folder as read: its summary and where the summary came from."""

    folder: Path
    summary: Summary
    source: str  # "results.sqlite" or "summary.json"

    @property
    def key(self) -> tuple[str, str]:
        """(dataset, norm): the group whose numbers are comparable."""
        return str(self.summary.run.dataset), str(self.summary.run.norm)


def _usable(entry: RunEntry) -> RunEntry:
    """The entry, if it has at least one job (its shape was checked when it was read)."""
    if not entry.summary.results:
        raise ValueError(f"{entry.folder.name}: no finished jobs (a run that failed or never ran)")
    return entry


def _read(folder: Path) -> RunEntry:
    store_path = folder / "results.sqlite"
    error: Exception | None = None
    if store_path.is_file():
        try:
            with ResultsStore(store_path, readonly=True) as store:
                return _usable(RunEntry(folder, summarize(store), "results.sqlite"))
        except (StoreError, sqlite3.Error, OSError, ValueError) as err:
            error = err
    summary_path = folder / "summary.json"
    if summary_path.is_file():
        try:
            summary = read_summary(summary_path)
        except SummaryFormatError as err:
            raise ValueError(f"{folder.name}: summary.json is not a run summary ({err})") from None
        except OSError as err:
            error = err
        else:
            return _usable(RunEntry(folder, summary, "summary.json"))
    raise ValueError(f"{folder.name}: unreadable ({error})")


def load_runs(folder: Path) -> tuple[list[RunEntry], list[str]]:
    """The runs directly under ``folder`` (sorted by name) and one line per unreadable one."""
    runs, problems = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not ((sub / "results.sqlite").is_file() or (sub / "summary.json").is_file()):
            continue
        try:
            runs.append(_read(sub))
        except ValueError as err:
            problems.append(str(err))
    return runs, problems


def _positive_eps(runs: list[RunEntry]) -> tuple[list[float], list[float]]:
    """(the positive eps every run has, those any run has), each ascending."""
    sets = [{e for e in eps_values(r.summary) if e > 0} for r in runs]
    if not sets:
        return [], []
    return sorted(set.intersection(*sets)), sorted(set.union(*sets))


def _sort_key(row: ModelRow, eps: float | None) -> float:
    if eps is None:
        return math.inf
    value = row.worst_accuracy.get(eps, math.nan)
    return math.inf if math.isnan(value) else -value


def _link(entry: RunEntry) -> Html:
    name = entry.summary.run.name
    label = entry.folder.name if not name or name == entry.folder.name else name
    text = esc(label)
    if (entry.folder / "report.html").is_file():
        href = quote(f"{entry.folder.name}/report.html")
        text = Html(f'<a href="{esc(href)}">{esc(label)}</a>')
    status = "" if entry.summary.run.complete else " (in progress)"
    warnings = entry.summary.warnings
    flag = f"<br><strong>{len(warnings)} warning(s): see its report</strong>" if warnings else ""
    return Html(f"{text}<br><small>{esc(entry.folder.name)}{esc(status)}</small>{flag}")


def _group(runs: list[RunEntry]) -> Html:
    """One table for runs of one dataset and norm, best worst-case accuracy first."""
    shared, union = _positive_eps(runs)
    # Shared eps make a ranking; without any, every eps is shown (blank where a run lacks it)
    # and the rows stay in folder order rather than rank numbers taken at different eps.
    columns = shared or union
    eps = chosen_eps(shared)
    headers = [
        "run",
        "model",
        "n",
        "clean acc.",
        *(f"eps {fmt_eps(e)}" for e in columns),
        "strongest attack",
        "ECE clean",
        "ECE attacked",
        *(f"AUROC {SHORT[s]}" for s in DETECTION_SCORES),
    ]
    rows: list[tuple[float, list[object]]] = []
    for entry in runs:
        head = headline(entry.summary, eps)
        for row in head.rows:
            worst = [
                pct(row.worst_accuracy[e]) if e in row.worst_accuracy else "\u2014" for e in columns
            ]
            attack = (
                "n/a" if row.attack is None else f"{row.attack} (eps {fmt_eps(head.chosen_eps)})"
            )
            cells = [
                _link(entry),
                row.model,
                entry.summary.run.n_examples,
                pct(row.clean_accuracy),
                *worst,
                attack,
                three(row.ece_clean),
                three(row.ece_adv),
                *(auroc(row.auroc.get(s, math.nan)) for s in DETECTION_SCORES),
            ]
            rows.append((_sort_key(row, shared[-1] if shared else None), cells))
    rows.sort(key=lambda r: r[0])  # stable: folder order among equals (or when unranked)
    order = (
        f"sorted by worst-case robust accuracy at eps {fmt_eps(shared[-1])}, the largest eps "
        "all these runs share"
        if shared
        else "not ranked: these runs share no eps > 0"
    )
    note = Html(f"<p class='note'>{len(runs)} run(s); {esc(order)}.</p>")
    cells = [c for _, c in rows]
    return Html(note + table(headers, cells, numeric_from=2, text_columns={4 + len(columns)}))


def build_leaderboard(folder: Path) -> Path:
    """Write ``folder/leaderboard.html`` comparing every run directly under ``folder``.

    Args:
        folder: a folder of run folders (each with results.sqlite or summary.json).

    Returns:
        the path of the written leaderboard.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder of runs at {str(folder)!r}")
    runs, problems = load_runs(folder)
    groups: dict[tuple[str, str], list[RunEntry]] = {}
    for entry in runs:
        groups.setdefault(entry.key, []).append(entry)
    sections = []
    for (dataset, norm), members in sorted(groups.items()):
        sections.append(Html(f"<h2>dataset {esc(dataset)}, norm {esc(norm)}</h2>{_group(members)}"))
    if not runs:
        sections.append(
            Html("<p class='note'>No run folders (with results.sqlite or summary.json) found.</p>")
        )
    if problems:
        items = join(Html(f"<li>{esc(p)}</li>") for p in problems)
        sections.append(
            Html(f"<div class='warnings'><strong>Skipped:</strong><ul>{items}</ul></div>")
        )
    note = (
        "The eps columns hold worst-case robust accuracy: a sample counts only if it is correct "
        "when clean and under every attack at that eps. ECE and AUROC (telling attacked from "
        "clean inputs; 0.5 is chance) are under each model's strongest attack (lowest robust "
        "accuracy) at the eps named in the 'strongest attack' column."
    )
    body = Html(
        f"<h1>Leaderboard: {esc(folder.resolve().name)}</h1>"
        f"<p class='note'>{esc(note)}</p>{join(sections)}"
    )
    return write_atomically(
        folder / LEADERBOARD, page(f"Leaderboard: {folder.resolve().name}", body)
    )
