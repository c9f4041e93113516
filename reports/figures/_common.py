"""What every figure shares: a blank Figure, legends outside the data, saving, placeholders.

Figures are `matplotlib.figure.Figure` objects, never pyplot ones, so no state is shared
between figures or with a caller's pyplot session; PNGs are written by the Agg renderer.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from reports.run_data import RunData

__all__ = [
    "DPI",
    "RC",
    "FigureUnavailable",
    "attack_handles",
    "eps_axis",
    "model_handles",
    "new_figure",
    "outside_legend",
    "percent_axis",
    "placeholder",
    "png_bytes",
    "with_note",
]

DPI = 110
# Applied while figures are built and saved. parse_math off: a model named "a$b$" is text,
# not mathtext (which could also fail to parse and crash the report).
RC: dict[str, Any] = {
    "text.parse_math": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


class FigureUnavailable(Exception):
    """A figure that this run's stored data cannot support; the message says why."""


def new_figure(width: float, height: float) -> Figure:
    """A blank figure (inches) with constrained layout, so legends outside fit the canvas."""
    return Figure(figsize=(width, height), layout="constrained")


def eps_axis(ax: Axes, run: RunData) -> None:
    """The eps axis: labelled with the norm, from 0 to the run's largest eps in every figure."""
    top = max([*run.eps_values, 0.0]) or 0.1
    pad = 0.04 * top
    ax.set_xlim(-pad, top + pad)
    ax.set_xlabel(run.eps_label)


def percent_axis(ax: Axes, label: str, axis: str = "y") -> None:
    """A 0-100 % axis with a little headroom so points at 0 and 100 are not cut."""
    if axis == "y":
        ax.set_ylim(-3, 103)
        ax.set_ylabel(label)
    else:
        ax.set_xlim(-3, 103)
        ax.set_xlabel(label)


def model_handles(run: RunData, models: Iterable[str], **line: Any) -> list[Artist]:
    """Legend handles: one line per model in its colour and marker."""
    return [
        Line2D(
            [],
            [],
            **{"color": run.palette.colour(m), "marker": run.palette.marker(m), **line},
            label=m,
        )
        for m in models
    ]


def attack_handles(run: RunData, attacks: Iterable[str]) -> list[Artist]:
    """Legend handles: one black line per attack in its line style."""
    return [
        Line2D([], [], color="black", linestyle=run.palette.linestyle(a), label=f"attack: {a}")
        for a in attacks
    ]


def outside_legend(fig: Figure | SubFigure, handles: Sequence[Artist], ncols: int = 6) -> None:
    """A legend below the panels, outside every axes, so it never hides data."""
    if handles:
        fig.legend(
            handles=list(handles),
            loc="outside lower center",
            ncols=max(1, min(ncols, len(handles))),
            frameon=False,
        )


def with_note(title: str, note: str, width: int = 60) -> str:
    """A panel title with a wrapped second line (a note in the title never hides data)."""
    return "\n".join([title, *textwrap.wrap(note, width)]) if note else title


def placeholder(title: str, reason: str) -> Figure:
    """A small figure that says why the real one could not be drawn."""
    fig = new_figure(8, 1.6)
    fig.text(0.5, 0.62, title, ha="center", va="center", fontsize=11, weight="bold")
    fig.text(
        0.5,
        0.3,
        "\n".join(textwrap.wrap(f"not drawn: {reason}", 100)),
        ha="center",
        va="center",
        color="#444444",
    )
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def show_image(ax: Axes, image: Any, title: str, *, map_cmap: str | None = None) -> None:
    """One tile of an image gallery, framed, without ticks.

    Args:
        ax: the tile's axes.
        image: (C, H, W) pixels in [0, 1] (grey for one channel, RGB for three), or with
            ``map_cmap`` an (H, W) non-negative map, drawn on its own scale from 0 to its max.
        title: the tile's title.
        map_cmap: the colour map of a map (attributions); None for an image.
    """
    import numpy as np

    if map_cmap is not None:
        top = float(image.max()) if image.size else 0.0
        ax.imshow(image, cmap=map_cmap, vmin=0.0, vmax=top or 1.0, interpolation="nearest")
    elif image.ndim == 3 and image.shape[0] == 3:
        ax.imshow(np.clip(np.transpose(image, (1, 2, 0)), 0, 1), interpolation="nearest")
    else:
        plane = image[0] if image.ndim == 3 else image
        ax.imshow(plane, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#999999")
