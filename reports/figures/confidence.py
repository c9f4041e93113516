"""[confidence_vs_accuracy] Does a model know it is wrong? Accuracy and confidence under attack.

Top: per model, robust accuracy and mean confidence on the attacked inputs against eps, under
the strongest attack at each eps, with the gap (overconfidence) shaded. Bottom: accuracy
against mean confidence, one point per eps; below the diagonal a model is overconfident.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.captions import sentence
from reports.figures._common import (
    FigureUnavailable,
    eps_axis,
    model_handles,
    new_figure,
    outside_legend,
    percent_axis,
)
from reports.formatting import fmt_eps, pct
from reports.run_data import RunData

__all__ = ["ID", "TITLE", "caption", "draw", "points"]

ID = "confidence_vs_accuracy"
TITLE = "Robustness vs confidence: overconfidence under attack"


def points(run: RunData, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eps, robust accuracy, mean confidence) under the strongest attack at each eps."""
    eps, accuracy, confidence = run.strongest_curve(model, "accuracy", "mean_confidence")
    keep = np.isfinite(confidence)
    return eps[keep], accuracy[keep], confidence[keep]


def _free(labelled: list[tuple[float, float]], x: float, y: float, radius: float = 5.0) -> bool:
    """Whether a point (in %) is far enough from every labelled one for its own eps label."""
    return all(abs(x - lx) > radius or abs(y - ly) > radius for lx, ly in labelled)


def draw(run: RunData) -> Figure:
    models = [m for m in run.models if len(points(run, m)[0])]
    if not models:
        raise FigureUnavailable("no job with a robust accuracy and a mean confidence is stored")
    ncols = min(4, len(models))
    nrows = math.ceil(len(models) / ncols)
    fig = new_figure(11, 2.5 * nrows + 4.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.5 * nrows, 4.2])
    axes = top.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, model in zip(axes, models, strict=False):
        eps, accuracy, confidence = points(run, model)
        colour = run.palette.colour(model)
        ax.fill_between(
            eps,
            100 * accuracy,
            100 * confidence,
            where=confidence >= accuracy,
            interpolate=True,
            color=colour,
            alpha=0.18,
            linewidth=0,
        )
        ax.plot(eps, 100 * accuracy, color=colour, marker=run.palette.marker(model), ms=4)
        ax.plot(eps, 100 * confidence, color=colour, linestyle="--", marker="none")
        ax.set_title(model)
        percent_axis(ax, "accuracy / confidence (%)")
        eps_axis(ax, run)
        ax.tick_params(labelbottom=True, labelleft=True)
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    outside_legend(
        top,
        [
            Line2D([], [], color="#444444", marker="o", ms=4, label="robust accuracy"),
            Line2D([], [], color="#444444", linestyle="--", label="mean confidence (attacked)"),
            Patch(color="#444444", alpha=0.18, label="overconfidence gap"),
        ],
    )

    ax = bottom.subplots(1, 3, width_ratios=[1, 2.2, 1])[1]
    bottom.axes[0].set_visible(False)
    bottom.axes[2].set_visible(False)
    ax.fill_between([0, 100], [0, 100], [0, 0], color="#D55E00", alpha=0.06, linewidth=0)
    ax.plot([0, 100], [0, 100], color="black", linewidth=1, linestyle=":")
    labelled: list[tuple[float, float]] = []
    for model in models:
        eps, accuracy, confidence = points(run, model)
        colour = run.palette.colour(model)
        ax.plot(
            100 * confidence,
            100 * accuracy,
            color=colour,
            marker=run.palette.marker(model),
            ms=5,
            linewidth=1.2,
        )
        for e, a, c in zip(eps, accuracy, confidence, strict=True):
            if _free(labelled, 100 * c, 100 * a):
                labelled.append((100 * c, 100 * a))
                ax.annotate(
                    fmt_eps(e),
                    (100 * c, 100 * a),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                    bbox={
                        "boxstyle": "square,pad=0.05",
                        "fc": "white",
                        "ec": "none",
                        "alpha": 0.75,
                    },
                )
    percent_axis(ax, "mean confidence on attacked inputs (%)", axis="x")
    percent_axis(ax, "robust accuracy (%)")
    ax.set_aspect("equal")
    ax.set_title(
        "robust accuracy vs mean confidence, one point per eps (label)\n"
        "shaded, below the dotted diagonal: overconfident"
    )
    outside_legend(bottom, model_handles(run, models))
    return fig


def caption(run: RunData) -> str:
    text = (
        "Top: per model, robust accuracy (solid) and mean confidence on the attacked inputs "
        "(dashed) against eps, under the strongest attack at each eps (the one with the lowest "
        "robust accuracy there); the shaded gap is overconfidence. Bottom: robust accuracy "
        "against mean confidence, one point per eps; below the dotted diagonal a model is more "
        "confident than it is right."
    )
    sentences = []
    for row in run.headline.rows:
        if row.attack is None:
            continue
        sentences.append(
            f"under {row.attack} at eps {fmt_eps(run.chosen_eps)} the {row.model} model keeps "
            f"{pct(row.mean_confidence)} mean confidence while its accuracy is {pct(row.accuracy)}"
        )
    if sentences:
        text += " " + sentence(sentences)
    return text
