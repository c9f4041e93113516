"""[per_class] Worst-case robust accuracy by class and eps, one heatmap per model.

Each cell is the robust accuracy within one class (a row) at one eps (a column) against all
the eps's attacks at once, per sample, as the headline's worst case; the model's worst class
at the chosen eps is boxed and its label set in bold, and so is every class tied with it (a
tie must not hide behind one name). Read from the stored per-sample columns only.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reports.figures._common import FigureUnavailable, new_figure
from reports.formatting import fmt_eps, pct
from reports.headline import worst_class_phrase
from reports.run_data import RunData
from robustbench_local.results.records import WorstCaseRow

__all__ = ["ANNOTATE_CELLS", "ID", "TITLE", "caption", "draw", "marked_eps"]

ID = "per_class"
TITLE = "Robust accuracy by class (worst case over attacks)"

# Values are written into the cells of a panel up to this many cells (10 classes x 8 eps);
# beyond that the digits would overlap and the colour alone has to do.
ANNOTATE_CELLS = 80
# Class labels on the y axis up to this many classes; more would overlap.
MAX_CLASS_TICKS = 40
CMAP = "viridis"  # perceptually uniform and colour-blind safe; dark = low accuracy


def marked_eps(run: RunData) -> float | None:
    """The eps whose worst class is marked: the chosen eps, else (a run with only eps 0)
    the largest stored eps; None without any eps."""
    if run.chosen_eps is not None:
        return run.chosen_eps
    return max(run.eps_values, default=None)


def _worst_row(run: RunData, model: str, eps: float | None) -> WorstCaseRow | None:
    return next((w for w in run.summary.worst_case if w.model == model and w.eps == eps), None)


def _panel(ax: Axes, run: RunData, model: str, marked: float | None) -> object:
    """Draw one model's heatmap on ``ax``; returns its image (for the colour bar)."""
    classes, eps, accuracy, _ = run.class_worst_case(model)
    names = [run.summary.run.class_name(int(c)) for c in classes]
    image = ax.imshow(
        100 * accuracy, cmap=CMAP, vmin=0, vmax=100, aspect="auto", interpolation="nearest"
    )
    ax.grid(False)
    ax.set_xticks(range(len(eps)), [fmt_eps(e) for e in eps])
    ax.set_xlabel(f"epsilon ({run.norm})")
    if len(classes) <= MAX_CLASS_TICKS:
        ax.set_yticks(range(len(classes)), names)
    ax.set_ylabel("class")
    if accuracy.size <= ANNOTATE_CELLS:
        for (i, j), value in np.ndenumerate(accuracy):
            if not math.isnan(value):
                # Light text on the dark (low) end of viridis, dark text on the bright end.
                colour = "white" if value < 0.6 else "black"
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", color=colour)
    title = model
    worst = _worst_row(run, model, marked)
    if marked is not None and worst is not None and worst.worst_class is not None:
        column = int(np.flatnonzero(eps == marked)[0])
        tied = (worst.worst_class, *worst.worst_class_ties)
        # No class is worse than another: nothing to single out.
        every = len(tied) > 1 and worst.class_accuracy_gap == 0
        for name in () if every else tied:
            row = names.index(name)
            ax.add_patch(
                Rectangle(
                    (column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="#D55E00", linewidth=2.5
                )
            )
            if len(classes) <= MAX_CLASS_TICKS:
                ax.get_yticklabels()[row].set_fontweight("bold")
        which = worst.worst_class if len(tied) <= 1 else f"{len(tied)} classes tie"
        which = "every class equal" if every else which
        title = (
            f"{model}\nworst at eps {fmt_eps(marked)}: {which} ({pct(worst.worst_class_accuracy)})"
        )
    ax.set_title(title)
    return image


def draw(run: RunData) -> Figure:
    """One heatmap per model with a stored job (up to 3 a row) and one shared colour bar."""
    models = [m for m in run.models if any(w.model == m for w in run.summary.worst_case)]
    if not models:
        raise FigureUnavailable("no job is stored yet")
    marked = marked_eps(run)
    n_classes = max(len(run.class_worst_case(m)[0]) for m in models)
    n_eps = max(len(run.class_worst_case(m)[1]) for m in models)
    ncols = min(3, len(models))
    nrows = math.ceil(len(models) / ncols)
    width = 1.4 + 0.55 * max(n_eps, 3)
    height = 1.3 + 0.28 * min(n_classes, MAX_CLASS_TICKS)
    fig = new_figure(width * ncols + 1.0, height * nrows + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    image = None
    for ax, model in zip(axes, models, strict=False):
        image = _panel(ax, run, model, marked)
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    fig.colorbar(
        image, ax=list(axes[: len(models)]), label="worst-case robust accuracy (%)", shrink=0.8
    )
    return fig


def caption(run: RunData) -> str:
    """What a cell means, the samples per class, and each model's worst class and gap."""
    marked = marked_eps(run)
    counts = [
        n
        for m in run.models
        for n in run.class_worst_case(m)[3]
        if any(w.model == m for w in run.summary.worst_case)
    ]
    text = (
        "Robust accuracy (%) within each class (rows) at each eps (columns), against all the "
        "eps's attacks at once: a sample counts as robust only if it is classified correctly "
        "when clean and under every attack at that eps (clean errors count as not robust). "
    )
    if counts:
        low, high = min(counts), max(counts)
        text += (
            f"Each class has {low} samples. "
            if low == high
            else f"Each class has {low} to {high} samples; a small class's number is coarse. "
        )
    if marked is None:
        return text
    text += (
        f"Boxed: each model's worst class at eps {fmt_eps(marked)}, and every class tied with "
        "it (none where all classes are equal)"
    )
    text += "; with no eps > 0 stored, that is clean accuracy." if marked == 0 else "."
    parts = []
    for model in run.models:
        worst = _worst_row(run, model, marked)
        if worst is not None and worst.worst_class is not None:
            parts.append(
                f"{model} {pct(worst.worst_class_accuracy)} ({worst_class_phrase(worst)}; "
                f"overall {pct(worst.accuracy)}; gap to the best class "
                f"{100 * worst.class_accuracy_gap:.1f} points)"
            )
    if parts:
        text += f" At eps {fmt_eps(marked)}: " + "; ".join(parts) + "."
    return text
