"""[risk_coverage] Selective prediction: error rate among the most confident inputs kept.

Left, clean inputs; right, the inputs attacked by each model's strongest attack at the chosen
eps. A model whose confidence still ranks its errors last keeps a low curve under attack.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from reports.captions import chosen_with_rule
from reports.figures._common import (
    FigureUnavailable,
    model_handles,
    new_figure,
    outside_legend,
    percent_axis,
)
from reports.formatting import fmt_eps, three
from reports.run_data import RunData
from robustbench_local.results.store import JobKey
from uncertainty.metrics import RiskCoverage, aurc, risk_coverage

__all__ = ["ID", "TITLE", "caption", "curve", "draw"]

ID = "risk_coverage"
TITLE = "Risk-coverage curves: clean vs attacked"


def _inputs(run: RunData, key: JobKey, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    s = run.samples(key)
    correct = s[f"{prefix}_pred"] == s["label"]
    confidence = np.ascontiguousarray(s[f"{prefix}_confidence"])
    return torch.from_numpy(confidence), torch.from_numpy(correct)


def curve(run: RunData, key: JobKey, prefix: str) -> tuple[RiskCoverage, float]:
    """The risk-coverage curve and AURC of one job's clean ("clean") or attacked ("adv") inputs."""
    confidence, correct = _inputs(run, key, prefix)
    return risk_coverage(confidence, correct), aurc(confidence, correct)


def draw(run: RunData) -> Figure:
    if run.chosen_eps is None:
        raise FigureUnavailable("no job at eps > 0 is stored, so there is no attack to compare")
    jobs = [k for k in map(run.strongest, run.models) if k is not None]
    jobs = [k for k in jobs if len(run.samples(k)["idx"])]
    if not jobs:
        raise FigureUnavailable(f"no job with samples is stored at eps {fmt_eps(run.chosen_eps)}")
    fig = new_figure(10, 4.4)
    axes = fig.subplots(1, 2, sharex=True)
    titles = (
        "clean inputs (own risk scale)",
        f"attacked: each model's strongest attack at eps {fmt_eps(run.chosen_eps)}",
    )
    for ax, prefix, title in zip(axes, ("clean", "adv"), titles, strict=True):
        highest = 0.0
        for key in jobs:
            rc, _ = curve(run, key, prefix)
            highest = max(highest, float(rc.risk.max()) if len(rc.risk) else 0.0)
            ax.step(
                100 * rc.coverage.numpy(),
                100 * rc.risk.numpy(),
                where="post",
                color=run.palette.colour(key.model),
            )
        ax.set_title(title)
        percent_axis(ax, "coverage: inputs kept, most confident first (%)", axis="x")
        # Each panel gets its own scale: clean risks of a few % would be flat on 0-100.
        top = min(103.0, max(5.0, 110 * highest))
        ax.set_ylim(-0.03 * top, top)
        ax.set_ylabel("risk: errors among kept inputs (%)")
    outside_legend(fig, model_handles(run, [k.model for k in jobs], marker=None))
    return fig


def caption(run: RunData) -> str:
    text = (
        "Risk-coverage curves: keep the most confident inputs first and plot the error rate "
        "among those kept; a lower curve means confidence ranks errors last. Left clean, right "
        f"attacked, each model under its strongest attack at {chosen_with_rule(run)}."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        if key is None or not len(run.samples(key)["idx"]):
            continue
        _, clean = curve(run, key, "clean")
        _, adv = curve(run, key, "adv")
        parts.append(f"{model} {three(clean)} \u2192 {three(adv)} ({key.attack})")
    if parts:
        text += " AURC (lower is better) clean \u2192 attacked: " + "; ".join(parts) + "."
    return text
