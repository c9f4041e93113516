"""The report's figures, in page order.

Each figure is one module of `reports.figures` holding its id and title (``ID``, ``TITLE``),
its drawing (``draw``) and its caption (``caption``); this list only orders them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from reports.figures import (
    accuracy,
    accuracy_vs_severity,
    attributions,
    calibration_under_shift,
    concepts,
    confidence,
    detection,
    examples,
    ood_detection,
    per_class,
    reliability,
    risk_coverage,
    uncertainty,
)
from reports.run_data import RunData

__all__ = ["FIGURES", "MODULES", "FigureSpec"]

MODULES = (
    accuracy,
    confidence,
    uncertainty,
    detection,
    reliability,
    risk_coverage,
    examples,
    # Where the model looks, after the gallery it explains.
    attributions,
    concepts,
    # Who the attacks fail: robust accuracy by class.
    per_class,
    # Natural shift after the adversarial figures: corruptions, then out-of-distribution sets.
    accuracy_vs_severity,
    calibration_under_shift,
    ood_detection,
)


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its id (file name and anchor), title, drawing and caption."""

    id: str
    title: str
    draw: Callable[[RunData], Figure]
    caption: Callable[[RunData], str]


FIGURES = tuple(FigureSpec(m.ID, m.TITLE, m.draw, m.caption) for m in MODULES)
