"""[concepts] What the model's representation varies along, and how much of an attack's effect
on it goes that way.

One row per model. Left: its concept directions (the top right singular vectors of the
penultimate-layer features of clean evaluated images), one row of top exemplars per
direction, best first, their labels at the right. Right: the concept shift against eps, the
mean share of the penultimate-layer change that lies in the span of those directions, under
each attack (the model's colour) and under random noise of the same size (grey). Dotted: the
share of the clean images' own variation that the directions hold, and the share an
isotropic change would have (k / D).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from reports.captions import at_chosen, sentence
from reports.figures._common import (
    FigureUnavailable,
    attack_handles,
    eps_axis,
    new_figure,
    outside_legend,
    percent_axis,
)
from reports.figures.attributions import why_none
from reports.formatting import pct
from reports.run_data import RunData
from reports.selection import result
from robustbench_local.results.store import ConceptRecord

__all__ = ["ID", "NOISE_COLOUR", "TITLE", "caption", "draw", "mosaic"]

ID = "concepts"
TITLE = "Concept directions: top exemplars and concept shift vs eps"

NOISE_COLOUR = "#8C8C8C"
_GAP = 1  # pixels between tiles of the mosaic


def mosaic(images: np.ndarray) -> np.ndarray:
    """One image of a (k, n, C, H, W) grid: rows of tiles with a white gap between them.

    Returns:
        (k*(H+gap)-gap, n*(W+gap)-gap) for one channel, with a trailing 3 for RGB; the
        first channel for any other channel count.
    """
    k, n, channels, height, width = images.shape
    rgb = channels == 3
    tile = np.transpose(images, (0, 1, 3, 4, 2)) if rgb else images[:, :, 0]
    shape = (k * (height + _GAP) - _GAP, n * (width + _GAP) - _GAP, *((3,) if rgb else ()))
    out = np.ones(shape, dtype=np.float32)
    for r in range(k):
        for c in range(n):
            top, left = r * (height + _GAP), c * (width + _GAP)
            out[top : top + height, left : left + width] = tile[r, c]
    return np.clip(out, 0.0, 1.0)


def _with_directions(run: RunData) -> list[tuple[str, ConceptRecord]]:
    records = run.concepts()
    return [
        (m, records[m])
        for m in run.models
        if m in records and records[m].exemplars.ndim == 5 and records[m].exemplars.shape[0] > 0
    ]


def _exemplars(ax: Axes, record: ConceptRecord) -> None:
    images = record.exemplars
    k, n, _, height, _ = images.shape
    picture = mosaic(images)
    ax.imshow(picture, cmap=None if picture.ndim == 3 else "gray", vmin=0, vmax=1)
    centres = [r * (height + _GAP) + (height - 1) / 2 for r in range(k)]
    ax.set_yticks(centres, [f"d{r + 1}" for r in range(k)], fontsize=7)
    labels = record.values.get("exemplar_labels")
    if isinstance(labels, list) and len(labels) == k:
        right = ax.secondary_yaxis("right")
        right.set_yticks(centres, [" ".join(map(str, row)) for row in labels], fontsize=6.5)
        right.tick_params(length=0)
    ax.set_xticks([])
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"top {n} exemplars per direction (labels at the right)", fontsize=8)


def _shift_panel(ax: Axes, run: RunData, model: str, record: ConceptRecord) -> None:
    colour = run.palette.colour(model)
    for attack in run.attacks:
        style = {"linestyle": run.palette.linestyle(attack), "linewidth": 1.6}
        eps, shift = run.curve(model, attack, "concept_shift")
        ax.plot(eps, 100 * shift, color=colour, marker=run.palette.marker(model), **style)
        eps, noise = run.curve(model, attack, "concept_shift_noise")
        ax.plot(eps, 100 * noise, color=NOISE_COLOUR, marker="x", **style)
    k, dims = record.values.get("k"), record.values.get("dims")
    explained = record.values.get("explained_variance")
    if isinstance(explained, (int, float)) and math.isfinite(explained):
        ax.axhline(100 * explained, color="black", linestyle=":", linewidth=1)
    if isinstance(k, int) and isinstance(dims, int) and dims > 0:
        ax.axhline(100 * k / dims, color="black", linestyle=(0, (1, 4)), linewidth=1)
    eps_axis(ax, run)
    percent_axis(ax, "change along the directions (%)")
    ax.set_title("concept shift", fontsize=8)


def draw(run: RunData) -> Figure:
    rows = _with_directions(run)
    if not rows:
        records = run.concepts().items()
        notes = [f"{m}: {r.values['note']}" for m, r in records if r.values.get("note")]
        if notes:
            raise FigureUnavailable("; ".join(notes))
        raise FigureUnavailable(why_none(run, "concept directions"))
    fig = new_figure(10.5, 3.0 * len(rows) + 0.5)
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1, squeeze=False)).ravel()
    for sub, (model, record) in zip(subfigs, rows, strict=True):
        _model_row(sub, run, model, record)
    outside_legend(
        fig,
        [
            *attack_handles(run, run.attacks),
            Line2D([], [], color="black", marker="o", label="attack (model colour)"),
            Line2D([], [], color=NOISE_COLOUR, marker="x", label="random noise, same size"),
            Line2D([], [], color="black", linestyle=":", label="clean images' own share"),
            Line2D([], [], color="black", linestyle=(0, (1, 4)), label="isotropic (k / D)"),
        ],
        ncols=4,
    )
    return fig


def _model_row(sub: SubFigure, run: RunData, model: str, record: ConceptRecord) -> None:
    values = record.values
    sub.suptitle(
        f"{model}: {values.get('k')} directions of {values.get('dims')} features, from "
        f"{values.get('n_concept_images')} clean images",
        fontsize=9.5,
        color=run.palette.colour(model),
        weight="bold",
    )
    left, right = sub.subplots(1, 2, width_ratios=(1.1, 1.0))
    _exemplars(left, record)
    _shift_panel(right, run, model, record)


def caption(run: RunData) -> str:
    rows = _with_directions(run)
    text = (
        "Per model, its concept directions: the top right singular vectors of the "
        "penultimate-layer features of clean evaluated images, each row one direction's "
        "top-scoring images (best first, labels at the right). Right: the concept shift, the "
        "mean share of the penultimate-layer change (attacked minus clean features) that lies "
        "in the span of the directions, against eps, under each attack (model colour) and "
        "under random noise of the same size (grey), on the explained subset; dotted lines: "
        "the share of the clean images' own variation the directions hold, and the share "
        "an isotropic change would have (k / D)."
    )
    parts = []
    for model, record in rows:
        values = record.values
        clause = (
            f"{model}'s {values.get('k')} directions hold "
            f"{pct(values.get('explained_variance'))} of its clean features' variation"
        )
        key = run.strongest(model)
        row = None if key is None else result(run.summary, model, key.attack, key.eps)
        if key is not None and row is not None:
            shift, noise = row.metric("concept_shift"), row.metric("concept_shift_noise")
            if math.isfinite(shift):
                clause += (
                    f"; at {at_chosen(run)}, {key.attack} moves {pct(shift)} of its change "
                    f"along them, random noise of the same size {pct(noise)}"
                )
        parts.append(clause)
    for model, record in run.concepts().items():
        if model in run.models and record.values.get("note"):
            parts.append(f"{model} has {record.values['note']}")
    if parts:
        text += " " + sentence(parts)
    return text
