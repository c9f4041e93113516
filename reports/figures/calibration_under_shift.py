"""[calibration_under_shift] ECE under corruption, as box plots per severity and model.

As Figure 2 of Ovadia et al. (2019): at each severity, one box per model over the stored
corruptions (median, quartiles, whiskers to 1.5 IQR, outliers as points); at "clean" the
model's clean ECE, a single value.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reports.figures._common import FigureUnavailable, new_figure, outside_legend
from reports.figures.accuracy_vs_severity import CLEAN_NOTE, severity_axis
from reports.formatting import three
from reports.run_data import RunData
from reports.selection import shift_missing
from robustbench_local.results.schema import ECE_BINS

__all__ = ["ID", "TITLE", "caption", "draw"]

ID = "calibration_under_shift"
TITLE = "Calibration under shift: ECE per severity"

GROUP_WIDTH = 0.8
MAX_WIDTH = 16.0  # inches  # of the unit between two severities, shared by the models' boxes


def draw(run: RunData) -> Figure:
    reason = shift_missing(run.summary, "corruption")
    if reason:
        raise FigureUnavailable(reason)
    models = run.shift_models
    # Wider with more boxes, up to a page's width (the boxes narrow beyond that).
    boxes = len(models) * (len(run.severities) + 1)
    fig = new_figure(min(MAX_WIDTH, max(7.0, 1.2 + 0.35 * boxes)), 4.4)
    ax = fig.subplots()
    width = GROUP_WIDTH / len(models)
    top = 0.0
    for i, model in enumerate(models):
        colour = run.palette.colour(model)
        offset = -GROUP_WIDTH / 2 + (i + 0.5) * width
        clean = run.clean_reference(model)[1]
        if not np.isnan(clean):  # one value: a mark, not a box
            ax.plot(
                [offset - 0.4 * width, offset + 0.4 * width],
                [clean, clean],
                color=colour,
                linewidth=2.5,
                solid_capstyle="butt",
            )
            top = max(top, clean)
        per_severity = run.by_severity(model, "ece")
        if not per_severity:
            continue
        boxes = ax.boxplot(
            list(per_severity.values()),
            positions=[s + offset for s in per_severity],
            widths=0.85 * width,
            patch_artist=True,
            manage_ticks=False,
            medianprops={"color": "black", "linewidth": 1.2},
            flierprops={
                "marker": run.palette.marker(model),
                "markersize": 3.5,
                "markerfacecolor": colour,
                "markeredgecolor": colour,
            },
            whiskerprops={"color": colour},
            capprops={"color": colour},
        )
        for box in boxes["boxes"]:
            box.set(facecolor=colour, alpha=0.55, edgecolor=colour)
        top = max(top, *(float(v.max()) for v in per_severity.values()))
    ax.set_ylim(-0.01, max(0.1, 1.1 * top))
    ax.set_ylabel(f"ECE ({ECE_BINS} bins)")
    ax.set_title(f"ECE over the {len(run.corruptions)} corruptions, per severity")
    severity_axis(ax, run.severities, pad=0.5)
    ax.grid(axis="x", visible=False)
    handles = [Patch(facecolor=run.palette.colour(m), alpha=0.55, label=m) for m in models]
    outside_legend(fig, handles)
    return fig


def caption(run: RunData) -> str:
    text = (
        f"Expected calibration error ({ECE_BINS} bins) on corrupted test inputs: at each "
        f"severity one box per model over the {len(run.corruptions)} corruptions (median, "
        "quartiles, whiskers to 1.5 times the interquartile range), as in Ovadia et al. "
        f"(2019), Figure 2; at clean a single mark. {CLEAN_NOTE}. A box that rises with "
        "severity is a model whose confidence does not fall as fast as its accuracy."
    )
    first, last = run.severities[0], run.severities[-1]
    parts = []
    for model in run.shift_models:
        ece = run.by_severity(model, "ece")

        def median(severity: int, table: dict[int, np.ndarray] = ece) -> str:
            return three(float(np.median(table[severity]))) if severity in table else "n/a"

        parts.append(
            f"{model} {three(run.clean_reference(model)[1])} clean, {median(first)} at "
            f"severity {first}, {median(last)} at severity {last}"
        )
    return text + " Median ECE: " + "; ".join(parts) + "."
