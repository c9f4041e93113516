"""The report's figures, in page order.

Each figure is one module of `reports.figures` holding its id and title (``ID``, ``TITLE``),
its drawing (``draw``) and its caption (``caption``); this list only orders them. A figure
that belongs to one kind of run only (the gallery of the attacks over random
transformations) also holds ``shown``: a report of a run it does not apply to leaves it out.
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
    transform_gallery,
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
    # Adversarial examples under random transformations (EOT attacks), between the
    # adversarial figures and the natural shift ones.
    transform_gallery,
    # Natural shift after the adversarial figures: corruptions, then out-of-distribution sets.
    accuracy_vs_severity,
    calibration_under_shift,
    ood_detection,
)


def _always(run: RunData) -> bool:
    return True


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its id (file name and anchor), title, drawing and caption, and whether a
    run's report has it at all (else every report has it, drawn or "Not drawn")."""

    id: str
    title: str
    draw: Callable[[RunData], Figure]
    caption: Callable[[RunData], str]
    shown: Callable[[RunData], bool] = _always


FIGURES = tuple(
    FigureSpec(m.ID, m.TITLE, m.draw, m.caption, getattr(m, "shown", _always)) for m in MODULES
)
