"""[ood_detection] How well each score flags out-of-distribution inputs: AUROC per OOD set.

One panel per score (low confidence, total uncertainty, epistemic uncertainty); in each, a
group of bars per OOD set, one bar per model: the AUROC of telling that set's inputs from
the clean test inputs.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.figures._common import FigureUnavailable, new_figure, outside_legend, with_note
from reports.figures.detection import SCORE_TITLES
from reports.formatting import auroc, pct
from reports.headline import DETECTION_SCORES
from reports.run_data import RunData
from reports.selection import shift_missing
from robustbench_local.results.records import OodRow
from robustbench_local.results.schema import MIN_DETECTION_GROUP

__all__ = ["ID", "TITLE", "best", "caption", "draw"]

ID = "ood_detection"
TITLE = "Out-of-distribution detection: AUROC per set and score"

GROUP_WIDTH = 0.8
MAX_WIDTH = 16.0  # inches
LABEL_LIMIT = 16  # bars per panel up to which each bar carries its value


def _row(run: RunData, model: str, ood: str) -> OodRow | None:
    return next((r for r in run.summary.ood if r.model == model and r.ood == ood), None)


def draw(run: RunData) -> Figure:
    reason = shift_missing(run.summary, "ood")
    if reason:
        raise FigureUnavailable(reason)
    models, sets = run.ood_models, run.ood_sets
    width = GROUP_WIDTH / len(models)
    bars = len(models) * len(sets)  # per panel
    fig = new_figure(min(MAX_WIDTH, max(9.0, 1.0 + 3 * (0.6 + 0.2 * bars))), 4.4)
    axes = fig.subplots(1, len(DETECTION_SCORES), sharey=True)
    label = bars <= LABEL_LIMIT
    for ax, score in zip(axes, DETECTION_SCORES, strict=True):
        ax.axhline(0.5, color="black", linewidth=1, linestyle=":", zorder=3)
        for i, model in enumerate(models):
            x = np.arange(len(sets)) - GROUP_WIDTH / 2 + (i + 0.5) * width
            rows = [_row(run, model, ood) for ood in sets]
            values = np.array([math.nan if r is None else r.metric(f"auroc_{score}") for r in rows])
            colour = run.palette.colour(model)
            ax.bar(x, np.nan_to_num(values, nan=0.0), width=0.9 * width, color=colour, alpha=0.85)
            if not label:
                continue
            for xi, value, row in zip(x, values, rows, strict=True):
                text = "" if row is None else auroc(value) if not math.isnan(value) else "n/a"
                y = 0.01 if math.isnan(value) else value + 0.01
                ax.text(xi, y, text, ha="center", va="bottom", fontsize=6.5, rotation=90)
        flat = (
            [m for m in run.deterministic_models() if m in models] if score == "epistemic" else []
        )
        note = f"0.5 for {', '.join(flat)}: no epistemic signal (deterministic)" if flat else ""
        ax.set_title(with_note(SCORE_TITLES[score], note, width=44))
        ax.set_xticks(np.arange(len(sets)), sets, rotation=20 if len(sets) > 3 else 0)
        ax.set_ylim(0, 1.12)
        ax.grid(axis="x", visible=False)
        ax.tick_params(labelleft=True)
    axes[0].set_ylabel("AUROC, OOD vs clean test inputs")
    handles: list[Artist] = [
        Patch(facecolor=run.palette.colour(m), alpha=0.85, label=m) for m in models
    ]
    handles.append(Line2D([], [], color="black", linewidth=1, linestyle=":", label="chance (0.5)"))
    outside_legend(fig, handles)
    return fig


def best(run: RunData, model: str) -> tuple[OodRow, str, float] | None:
    """The model's highest AUROC over its OOD sets and scores: (row, score, AUROC); None
    when every one is undefined."""
    found = [
        (row.metric(f"auroc_{score}"), -i, -j, row, score)
        for i, row in enumerate(r for r in run.summary.ood if r.model == model)
        for j, score in enumerate(DETECTION_SCORES)
        if not math.isnan(row.metric(f"auroc_{score}"))
    ]
    if not found:
        return None
    value, _, _, row, score = max(found, key=lambda f: f[:3])  # ties: the first listed
    return row, score, value


def caption(run: RunData) -> str:
    text = (
        "How well each score tells out-of-distribution inputs from the clean test inputs: "
        "AUROC per OOD set (bars grouped by set, one colour per model) for low confidence, "
        "total uncertainty and epistemic uncertainty; 0.5 is chance, below 0.5 the OOD inputs "
        "look more certain than the test inputs. FPR95 is the share of clean test inputs "
        f"flagged at the threshold that flags 95% of the OOD ones. Undefined (n/a) where a "
        f"group has fewer than {MIN_DETECTION_GROUP} inputs."
    )
    parts = []
    for model in run.ood_models:
        found = best(run, model)
        if found is None:
            parts.append(f"{model}: undefined")
            continue
        row, score, value = found
        # Per set, its best score; the hardest set is the one whose best is lowest.
        per_set = []
        for r in run.summary.ood:
            values = [r.metric(f"auroc_{s}") for s in DETECTION_SCORES]
            values = [v for v in values if not math.isnan(v)]
            if r.model == model and values:
                per_set.append((max(values), r.ood))
        worst = min(per_set, key=lambda p: p[0])
        parts.append(
            f"{model}: best AUROC {auroc(value)} ({score} on {row.ood}, FPR95 "
            f"{pct(row.metric(f'fpr95_{score}'))}); hardest set {worst[1]} (best score "
            f"there {auroc(worst[0])})"
        )
    return text + " Per model: " + "; ".join(parts) + "."
