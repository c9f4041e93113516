"""[accuracy_vs_eps] Robust accuracy against eps: a panel per attack, plus the worst case."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from reports.figures._common import (
    FigureUnavailable,
    eps_axis,
    model_handles,
    new_figure,
    outside_legend,
    percent_axis,
)
from reports.formatting import fmt_eps, pct
from reports.headline import headline
from reports.run_data import RunData

__all__ = ["ID", "TITLE", "WORST_CASE", "caption", "draw", "with_clean_point"]

ID = "accuracy_vs_eps"
TITLE = "Robust accuracy vs eps"

WORST_CASE = "worst case over attacks"


def with_clean_point(
    eps: np.ndarray, accuracy: np.ndarray, clean_accuracy: float
) -> tuple[np.ndarray, np.ndarray]:
    """Prepend (0, clean accuracy) when eps 0 is not stored: robust accuracy at eps 0 is it."""
    if (len(eps) and eps[0] == 0) or math.isnan(clean_accuracy):
        return eps, accuracy
    return np.concatenate([[0.0], eps]), np.concatenate([[clean_accuracy], accuracy])


def draw(run: RunData) -> Figure:
    if not run.summary.results:
        raise FigureUnavailable("no job is stored yet")
    panels = [*run.attacks, WORST_CASE]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure(3.8 * ncols + 0.4, 3.1 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    clean = {row.model: row.clean_accuracy for row in headline(run.summary, run.eps).rows}
    for ax, panel in zip(axes, panels, strict=False):
        for model in run.models:
            if panel == WORST_CASE:
                eps, accuracy = run.worst_curve(model)
            else:
                eps, accuracy = run.curve(model, panel, "accuracy")
            if len(eps) == 0:
                continue
            eps, accuracy = with_clean_point(eps, accuracy, clean[model])
            ax.plot(
                eps,
                100 * accuracy,
                color=run.palette.colour(model),
                marker=run.palette.marker(model),
                markersize=4.5,
                linewidth=1.6,
            )
        ax.set_title(panel if panel == WORST_CASE else f"attack: {panel}")
        percent_axis(ax, "robust accuracy (%)")
        eps_axis(ax, run)
        ax.tick_params(labelbottom=True, labelleft=True)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    outside_legend(fig, model_handles(run, run.models))
    return fig


def caption(run: RunData) -> str:
    text = (
        "Robust accuracy (%) against eps, one panel per attack, and the worst case over "
        "attacks (a sample counts as robust only if it is classified correctly when clean and "
        "under every attack at that eps; clean errors count as not robust). At eps 0 the "
        "accuracy is the clean accuracy."
    )
    positive = [e for e in run.eps_values if e > 0]
    for eps in dict.fromkeys([e for e in (run.chosen_eps, max(positive, default=None)) if e]):
        parts = []
        for row in run.headline.rows:
            worst = row.worst_accuracy.get(eps)
            if worst is not None:
                parts.append(f"{row.model} {pct(worst)} (clean {pct(row.clean_accuracy)})")
        if parts:
            text += f" Worst case at eps {fmt_eps(eps)}: " + "; ".join(parts) + "."
    return text
