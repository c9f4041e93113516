"""Colour-blind-safe colours (Okabe & Ito 2008) and markers, fixed per model.

A model's colour and marker follow its place in the run's config, so it looks the same in
every figure of a report. Attacks are told apart by line style, clean from adversarial by
grey versus the model's colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ATTACK_STYLES", "CLEAN", "MARKERS", "OKABE_ITO", "Palette"]

# Okabe-Ito, reordered so the first models get the most distinct hues; yellow (#F0E442)
# and black come last: yellow is faint on white, black is kept for reference lines.
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Eight distinct dash patterns, so a batch of up to eight attacks never shares a style:
# solid, dashed, dotted, dash-dot, long dashes, dash-dot-dot, sparse dots, long dash-dot.
LineStyle = str | tuple[int, tuple[int, ...]]
ATTACK_STYLES: tuple[LineStyle, ...] = (
    "-",
    "--",
    ":",
    "-.",
    (0, (8, 2)),
    (0, (4, 1, 1, 1, 1, 1)),
    (0, (1, 3)),
    (0, (10, 3, 2, 3)),
)
CLEAN = "#8C8C8C"  # clean inputs: neutral grey next to a model's colour


@dataclass(frozen=True)
class Palette:
    """Colours, markers and line styles for one run.

    Args:
        models: model names in config order.
        attacks: attack labels in config order.
    """

    models: Sequence[str]
    attacks: Sequence[str] = ()

    def _index(self, model: str) -> int:
        try:
            return list(self.models).index(model)
        except ValueError:
            return len(self.models)

    def colour(self, model: str) -> str:
        """The model's colour; after eight models the colours repeat with new markers."""
        return OKABE_ITO[self._index(model) % len(OKABE_ITO)]

    def marker(self, model: str) -> str:
        """The model's marker; shifted by one each time the colours wrap around."""
        index = self._index(model)
        return MARKERS[(index + index // len(OKABE_ITO)) % len(MARKERS)]

    def linestyle(self, attack: str) -> LineStyle:
        try:
            index = list(self.attacks).index(attack)
        except ValueError:
            index = len(self.attacks)
        return ATTACK_STYLES[index % len(ATTACK_STYLES)]
