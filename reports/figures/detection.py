"""[detection_auroc_vs_eps] How well each score tells an attacked input from its original."""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.figures._common import (
    FigureUnavailable,
    attack_handles,
    eps_axis,
    model_handles,
    new_figure,
    outside_legend,
    with_note,
)
from reports.headline import DETECTION_SCORES
from reports.run_data import RunData

__all__ = ["SCORE_TITLES", "draw"]

SCORE_TITLES = {
    "confidence": "score: low confidence",
    "total": "score: total uncertainty",
    "epistemic": "score: epistemic uncertainty",
}


def draw(run: RunData) -> Figure:
    if not any(e > 0 for e in run.eps_values):
        raise FigureUnavailable("no job at eps > 0 is stored (at eps 0 nothing is attacked)")
    fig = new_figure(11, 3.9)
    axes = fig.subplots(1, len(DETECTION_SCORES), sharex=True, sharey=True)
    drawn = False
    for ax, score in zip(axes, DETECTION_SCORES, strict=True):
        ax.axhline(0.5, color="black", linewidth=1, linestyle=":")
        ax.text(0.99, 0.51, "chance", transform=ax.get_yaxis_transform(), ha="right", fontsize=7)
        for model in run.models:
            for attack in run.attacks:
                eps, auroc = run.curve(model, attack, f"auroc_{score}")
                keep = eps > 0
                if not keep.any():
                    continue
                drawn = True
                ax.plot(
                    eps[keep],
                    auroc[keep],
                    color=run.palette.colour(model),
                    marker=run.palette.marker(model),
                    linestyle=run.palette.linestyle(attack),
                    ms=4,
                )
        flat = run.deterministic_models() if score == "epistemic" else []
        note = f"0.5 for {', '.join(flat)}: no epistemic signal (deterministic)" if flat else ""
        ax.set_title(with_note(SCORE_TITLES[score], note, width=48))
        eps_axis(ax, run)
        ax.set_ylabel("AUROC adversarial vs clean")
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelleft=True)
    if not drawn:
        raise FigureUnavailable("every stored detection AUROC is undefined (NaN)")
    outside_legend(fig, [*model_handles(run, run.models), *attack_handles(run, run.attacks)])
    return fig
