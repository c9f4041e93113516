"""[detection_auroc_vs_eps] How well each score tells an attacked input from its original."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports.captions import at_chosen
from reports.figures._common import (
    FigureUnavailable,
    attack_handles,
    eps_axis,
    model_handles,
    new_figure,
    outside_legend,
    with_note,
)
from reports.formatting import auroc
from reports.headline import DETECTION_SCORES
from reports.run_data import RunData
from robustbench_local.results.schema import MIN_DETECTION_GROUP

__all__ = ["ID", "SCORE_TITLES", "TITLE", "caption", "draw"]

ID = "detection_auroc_vs_eps"
TITLE = "Detecting attacks: AUROC vs eps per score"

SCORE_TITLES = {
    "confidence": "score: low confidence",
    "total": "score: total uncertainty",
    "epistemic": "score: epistemic uncertainty",
}


ROWS = (
    ("", "all attacked inputs"),
    ("_successful", "successful attacks only"),
)


def draw(run: RunData) -> Figure:
    if not any(e > 0 for e in run.eps_values):
        raise FigureUnavailable("no job at eps > 0 is stored (at eps 0 nothing is attacked)")
    fig = new_figure(11, 7.2)
    grid = fig.subplots(len(ROWS), len(DETECTION_SCORES), sharex=True, sharey=True)
    drawn = False
    for (suffix, row_title), axes in zip(ROWS, grid, strict=True):
        for ax, score in zip(axes, DETECTION_SCORES, strict=True):
            ax.axhline(0.5, color="black", linewidth=1, linestyle=":")
            ax.text(
                0.99, 0.51, "chance", transform=ax.get_yaxis_transform(), ha="right", fontsize=7
            )
            for model in run.models:
                for attack in run.attacks:
                    style = {
                        "color": run.palette.colour(model),
                        "linestyle": run.palette.linestyle(attack),
                    }
                    eps, value = run.curve(model, attack, f"auroc_{score}{suffix}")
                    keep = (eps > 0) & ~np.isnan(value)
                    if keep.any():
                        drawn = True
                        ax.plot(
                            eps[keep], value[keep], marker=run.palette.marker(model), ms=4, **style
                        )
                    if suffix:
                        continue
                    # The control: the same score on clean inputs plus random noise of the
                    # attack's norm; a detector that flags noise too detects nothing.
                    eps, control = run.curve(model, attack, f"auroc_{score}_noise")
                    keep = (eps > 0) & ~np.isnan(control)
                    if keep.any():
                        ax.plot(eps[keep], control[keep], linewidth=1, alpha=0.35, **style)
            flat = run.deterministic_models() if score == "epistemic" else []
            note = f"0.5 for {', '.join(flat)}: no epistemic signal (deterministic)" if flat else ""
            ax.set_title(with_note(f"{SCORE_TITLES[score]}\n{row_title}", note, width=48))
            eps_axis(ax, run)
            ax.set_ylabel("AUROC vs clean")
            ax.set_ylim(-0.02, 1.02)
            ax.tick_params(labelleft=True)
    if not drawn:
        raise FigureUnavailable("every stored detection AUROC is undefined (NaN)")
    control = Line2D(
        [],
        [],
        color="#444444",
        linewidth=1,
        alpha=0.35,
        label="faint: noise control",
    )
    outside_legend(
        fig, [*model_handles(run, run.models), *attack_handles(run, run.attacks), control]
    )
    return fig


def _at_eps(run: RunData, model: str, attack: str, metric: str) -> float:
    """The metric of one job at the chosen eps (NaN when it was not stored)."""
    eps, values = run.curve(model, attack, metric)
    match = [v for e, v in zip(eps, values, strict=True) if e == run.chosen_eps]
    return float(match[0]) if match else math.nan


def caption(run: RunData) -> str:
    text = (
        "The detection protocol of Smith and Gal (2018): AUROC of telling attacked inputs "
        "from their clean originals (eps > 0), per score: low confidence, total uncertainty, "
        "epistemic uncertainty; top row over all attacked inputs, bottom row over the "
        f"successful attacks only (left out where fewer than {MIN_DETECTION_GROUP} "
        "succeeded: an AUROC on a handful of inputs is luck). Faint lines are the control, "
        "clean inputs plus random noise of the attack's norm: a score that flags noise as "
        "well as attacks detects perturbation, not attacks. 0.5 is chance; below 0.5 the "
        "attacked inputs look more certain than the clean ones. Line style = attack."
    )
    parts = []
    for row in run.headline.rows:
        if row.attack is None or run.chosen_eps is None:
            continue
        scores = ", ".join(f"{s} {auroc(row.auroc.get(s, math.nan))}" for s in DETECTION_SCORES)
        extra = ", ".join(
            f"epistemic {label} {auroc(_at_eps(run, row.model, row.attack, metric))}"
            for label, metric in (
                ("successful only", "auroc_epistemic_successful"),
                ("noise control", "auroc_epistemic_noise"),
            )
        )
        parts.append(f"{row.model} ({row.attack}): {scores}; {extra}")
    if parts:
        text += f" Under the strongest attack at {at_chosen(run)}: " + "; ".join(parts) + "."
    return text
