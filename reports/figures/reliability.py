"""[reliability] Reliability diagrams with confidence histograms, clean vs the strongest attack.

Per model, at the chosen eps and its strongest attack there: accuracy in each confidence bin
against the bin's mean confidence (on the diagonal = calibrated), for the clean inputs (grey)
and the attacked ones (the model's colour), and below, how the confidences are distributed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.captions import chosen_with_rule
from reports.figures._common import FigureUnavailable, new_figure, outside_legend
from reports.formatting import fmt_eps, three
from reports.palette import CLEAN
from reports.run_data import RunData
from robustbench_local.plotting import draw_reliability
from robustbench_local.results.schema import ECE_BINS
from robustbench_local.results.store import JobKey
from uncertainty.metrics import ReliabilityBins, reliability_bins

__all__ = ["ID", "N_BINS", "TITLE", "bins", "caption", "draw"]

ID = "reliability"
TITLE = "Reliability diagrams: clean vs strongest attack"

N_BINS = ECE_BINS  # as the protocol's ECE, so the diagram and the stored ECE agree


def bins(run: RunData, key: JobKey, prefix: str) -> tuple[ReliabilityBins, np.ndarray]:
    """Reliability bins and the confidences of one job's clean or adversarial predictions."""
    s = run.samples(key)
    confidence = np.ascontiguousarray(s[f"{prefix}_confidence"])
    correct = np.ascontiguousarray(s[f"{prefix}_pred"] == s["label"])
    return reliability_bins(torch.from_numpy(confidence), torch.from_numpy(correct), N_BINS), (
        confidence
    )


def draw(run: RunData) -> Figure:
    if run.chosen_eps is None:
        raise FigureUnavailable("no job at eps > 0 is stored, so there is no attack to compare")
    jobs = [k for k in map(run.strongest, run.models) if k is not None]
    jobs = [k for k in jobs if len(run.samples(k)["idx"])]
    if not jobs:
        raise FigureUnavailable(f"no job with samples is stored at eps {fmt_eps(run.chosen_eps)}")
    ncols = min(4, len(jobs))
    nrows = math.ceil(len(jobs) / ncols)
    fig = new_figure(2.9 * ncols + 0.6, 4.3 * nrows + 0.5)
    subfigs = np.atleast_1d(fig.subfigures(nrows, ncols, squeeze=False)).ravel()
    for sub, key in zip(subfigs, jobs, strict=False):
        colour = run.palette.colour(key.model)
        diagram, histogram = sub.subplots(2, 1, sharex=True, height_ratios=[2.2, 1])
        diagram.plot([0, 100], [0, 100], color="black", linewidth=1, linestyle=":")
        s = run.samples(key)
        for prefix, c, marker in (
            ("clean", CLEAN, "o"),
            ("adv", colour, run.palette.marker(key.model)),
        ):
            # The lab plots' drawing (robustbench_local.plotting), so both look alike.
            correct = s[f"{prefix}_pred"] == s["label"]
            draw_reliability(
                diagram,
                histogram,
                np.ascontiguousarray(s[f"{prefix}_confidence"]),
                np.ascontiguousarray(correct),
                bins=N_BINS,
                colour=c,
                marker=marker,
            )
        sub.suptitle(f"{key.model}\n{key.attack} at eps {fmt_eps(key.eps)}", fontsize=10)
        diagram.set_xlim(0, 100)
        diagram.set_ylim(-3, 103)
        diagram.set_ylabel("accuracy in bin (%)")
        histogram.set_xlabel("confidence (top-class probability, %)")
        histogram.set_ylabel("inputs (%)")
    for sub in subfigs[len(jobs) :]:
        sub.set_visible(False)
    outside_legend(
        fig,
        ncols=4 if len(jobs) >= 3 else 2,
        handles=[
            Line2D([], [], color=CLEAN, marker="o", ms=4, label="clean inputs"),
            Line2D(
                [], [], color="#444444", marker="s", ms=4, label="attacked inputs (model colour)"
            ),
            Line2D([], [], color="black", linestyle=":", label="perfect calibration"),
            Patch(color="#444444", alpha=0.4, label="confidence histogram"),
        ],
    )
    return fig


def caption(run: RunData) -> str:
    text = (
        f"Reliability diagrams ({N_BINS} equal-width confidence bins: accuracy in "
        "each bin against its mean confidence, marker area \u221d inputs in the bin; on the dotted "
        "diagonal a model is calibrated) "
        "and confidence histograms, clean inputs (grey) vs attacked inputs (model colour). "
        f"Each model is shown under its strongest attack at {chosen_with_rule(run)}."
    )
    parts = [
        f"{row.model} {three(row.ece_clean)} \u2192 {three(row.ece_adv)} ({row.attack})"
        for row in run.headline.rows
        if row.attack is not None
    ]
    if parts:
        text += " ECE clean \u2192 attacked: " + "; ".join(parts) + "."
    return text
