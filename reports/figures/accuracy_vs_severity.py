"""[accuracy_vs_severity] Accuracy and ECE on corrupted inputs against corruption severity.

One line per model: the mean over the stored corruptions at each severity, with a band from
the easiest to the hardest corruption. Severity 0 is the clean test set.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reports.figures._common import (
    FigureUnavailable,
    model_handles,
    new_figure,
    outside_legend,
    percent_axis,
)
from reports.formatting import pct, three
from reports.run_data import RunData
from reports.selection import shift_missing
from robustbench_local.results.schema import ECE_BINS
from robustbench_local.results.summary import mce_baseline

__all__ = ["CLEAN_NOTE", "ID", "TITLE", "caption", "curve", "draw", "severity_axis"]

ID = "accuracy_vs_severity"
TITLE = "Accuracy and calibration vs corruption severity"

CLEAN_NOTE = (
    "Severity 0 is the clean test set: the clean accuracy and ECE stored with the model's "
    "attack jobs (their median, as in the headline table)"
)


def severity_axis(ax: Axes, severities: list[int], pad: float = 0.3) -> None:
    """Severities 0 (clean) to the largest stored one, as integer ticks; ``pad`` on either
    side (wider for boxes grouped around each tick)."""
    ticks = [0, *severities]
    ax.set_xticks(ticks, ["clean", *map(str, severities)])
    ax.set_xlim(-pad, max(ticks) + pad)
    ax.set_xlabel("corruption severity")


def curve(
    run: RunData, model: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(severity, mean, min, max) over corruptions of "accuracy" or "ece", each (P,);
    severity 0 (the clean reference) first when the model has one."""
    clean = dict(zip(("accuracy", "ece"), run.clean_reference(model), strict=True))[metric]
    points = [] if math.isnan(clean) else [(0, clean, clean, clean)]
    for severity, values in run.by_severity(model, metric).items():
        points.append((severity, values.mean(), values.min(), values.max()))
    table = np.array(points, dtype=np.float64).reshape(len(points), 4)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3]


PANELS = (
    ("accuracy", "accuracy on corrupted inputs", "accuracy (%)"),
    ("ece", f"expected calibration error ({ECE_BINS} bins)", "ECE"),
)


def draw(run: RunData) -> Figure:
    reason = shift_missing(run.summary, "corruption")
    if reason:
        raise FigureUnavailable(reason)
    fig = new_figure(10, 4.3)
    axes = fig.subplots(1, len(PANELS), sharex=True)
    # Bands of many models overlap: fainter ones keep every line readable.
    alpha = 0.15 if len(run.shift_models) <= 3 else 0.07
    for ax, (metric, title, label) in zip(axes, PANELS, strict=True):
        scale = 100 if metric == "accuracy" else 1
        top = 0.0
        for model in run.shift_models:
            severity, mean, low, high = curve(run, model, metric)
            colour = run.palette.colour(model)
            ax.fill_between(severity, scale * low, scale * high, color=colour, alpha=alpha, lw=0)
            ax.plot(
                severity,
                scale * mean,
                color=colour,
                marker=run.palette.marker(model),
                markersize=4.5,
                linewidth=1.6,
            )
            top = max(top, float(np.nanmax(high, initial=0.0)))
        ax.set_title(title)
        if metric == "accuracy":
            percent_axis(ax, label)
        else:
            ax.set_ylim(-0.01, max(0.1, 1.1 * top))
            ax.set_ylabel(label)
        severity_axis(ax, run.severities)
        ax.tick_params(labelbottom=True)
    outside_legend(fig, model_handles(run, run.shift_models))
    return fig


def _mce(value: float) -> str:
    return "undefined" if math.isnan(value) else f"{value:.2f}"


def caption(run: RunData) -> str:
    corruptions = ", ".join(run.corruptions)
    text = (
        f"Accuracy (left) and expected calibration error ({ECE_BINS} bins, right) on "
        "corrupted test inputs against severity; a line is the mean over the "
        f"{len(run.corruptions)} corruptions stored ({corruptions}), its band runs from the "
        f"easiest to the hardest corruption. {CLEAN_NOTE}."
    )
    first, last = run.severities[0], run.severities[-1]
    baseline = mce_baseline(run.summary.run.config, run.summary.shift)
    summaries = {r.model: r for r in run.summary.shift_summary}
    parts = []
    for model in run.shift_models:
        accuracy = run.by_severity(model, "accuracy")
        ece = run.by_severity(model, "ece")
        clean_accuracy, clean_ece = run.clean_reference(model)

        def at(table: dict[int, np.ndarray], severity: int, fmt=pct) -> str:
            return fmt(table[severity].mean()) if severity in table else "n/a"

        row = summaries.get(model)
        parts.append(
            f"{model}: accuracy {pct(clean_accuracy)} clean, {at(accuracy, first)} at severity "
            f"{first}, {at(accuracy, last)} at severity {last}; ECE {three(clean_ece)} clean, "
            f"{at(ece, first, three)} at {first}, {at(ece, last, three)} at {last}"
            + ("" if row is None else f"; mCE {_mce(row.mce)}")
        )
    text += " Per model (means over corruptions): " + "; ".join(parts) + "."
    if baseline is not None:
        text += (
            f" mCE (Hendrycks and Dietterich 2019): the model's errors summed over severities, "
            f"divided by those of {baseline} (the run's first model, mCE 1), averaged over "
            "corruptions; below 1 is more robust (undefined where that model makes no error "
            "on a corruption)."
        )
    return text
