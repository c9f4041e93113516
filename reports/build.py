"""Build a run's report from its store alone: figures, summary.json and report.html."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

from reports.catalogue import FIGURES, FigureSpec
from reports.figures._common import RC, FigureUnavailable, placeholder, png_bytes
from reports.page import render_report
from reports.run_data import RunData
from robustbench_local.atomic import write_atomically
from robustbench_local.results.records import FigureEntry, Summary
from robustbench_local.results.store import ResultsStore
from robustbench_local.results.summary import summarize, write_summary

__all__ = ["FIGURES_DIR", "build_report"]

FIGURES_DIR = "figures"


def _shown(spec: FigureSpec, run: RunData) -> bool:
    """Whether the run's report has the figure; when that cannot be told, it has it (and
    says why it is not drawn)."""
    try:
        return spec.shown(run)
    except Exception as error:  # as in _draw: a bug must not cost the rest of the report
        warnings.warn(f"reports: figure {spec.id!r} failed: {error!r}", stacklevel=2)
        return True


def _draw(spec: FigureSpec, run: RunData) -> tuple[bytes, str]:
    """(PNG, caption) of a figure; when it cannot be drawn, a placeholder and the reason."""
    with matplotlib.rc_context(RC):
        try:
            fig = spec.draw(run)
            caption = spec.caption(run)
        except FigureUnavailable as reason:
            fig, caption = placeholder(spec.title, str(reason)), f"Not drawn: {reason}."
        except Exception as error:  # a bug must not cost the reviewer the rest of the report
            warnings.warn(f"reports: figure {spec.id!r} failed: {error!r}", stacklevel=2)
            reason = f"this report could not draw it ({type(error).__name__}: {error})"
            fig, caption = placeholder(spec.title, reason), f"Not drawn: {reason}."
        return png_bytes(fig), caption


def build_report(run_dir: Path, *, eps: float | None = None) -> Summary:
    """Write the figures, ``summary.json`` and ``report.html`` of the run in ``run_dir``.

    Reads ``run_dir/results.sqlite`` read-only and never runs a model, so it works on a run
    still in progress and rebuilds a finished run's report exactly.

    Args:
        run_dir: a run folder holding ``results.sqlite``.
        eps: the eps the reliability, risk-coverage and example figures and the headline's
            ECE / AUROC columns use; default: the largest eps in (0, 0.1], else the smallest
            positive one (`reports.selection.chosen_eps`).

    Returns:
        the summary as written to ``summary.json`` (there NaN is null), with its figures
        (id, title, path relative to run_dir, caption).
    """
    run_dir = Path(run_dir)
    pngs: dict[str, bytes] = {}
    figures = []
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        (run_dir / FIGURES_DIR).mkdir(exist_ok=True)
        summary = summarize(store)
        run = RunData(summary, store, eps)
        for spec in FIGURES:
            if not _shown(spec, run):
                continue  # a figure for another kind of run (no EOT attack)
            png, caption = _draw(spec, run)
            path = f"{FIGURES_DIR}/{spec.id}.png"
            write_atomically(run_dir / path, png)
            pngs[spec.id] = png
            figures.append(FigureEntry(spec.id, spec.title, path, caption))
    summary = summary.with_figures(figures)
    write_summary(summary, run_dir / "summary.json")
    html = render_report(summary, run.headline, run.palette, pngs)
    write_atomically(run_dir / "report.html", html.encode("utf-8"))
    return summary
