"""The report's figures, in page order: id, title, how to draw it and how to caption it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from reports import captions
from reports.figures import (
    accuracy,
    confidence,
    detection,
    examples,
    reliability,
    risk_coverage,
    uncertainty,
)
from reports.run_data import RunData

__all__ = ["FIGURES", "FigureSpec"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its id (file name and anchor), title, drawing and caption."""

    id: str
    title: str
    draw: Callable[[RunData], Figure]
    caption: Callable[[RunData], str]


FIGURES = (
    FigureSpec(
        "accuracy_vs_eps",
        "Robust accuracy vs eps",
        accuracy.draw,
        captions.accuracy_vs_eps,
    ),
    FigureSpec(
        "confidence_vs_accuracy",
        "Robustness vs confidence: overconfidence under attack",
        confidence.draw,
        captions.confidence_vs_accuracy,
    ),
    FigureSpec(
        "uncertainty_vs_eps",
        "Aleatoric and epistemic uncertainty vs eps",
        uncertainty.draw,
        captions.uncertainty_vs_eps,
    ),
    FigureSpec(
        "detection_auroc_vs_eps",
        "Detecting attacks: AUROC vs eps per score",
        detection.draw,
        captions.detection_auroc_vs_eps,
    ),
    FigureSpec(
        "reliability",
        "Reliability diagrams: clean vs strongest attack",
        reliability.draw,
        captions.reliability_caption,
    ),
    FigureSpec(
        "risk_coverage",
        "Risk-coverage curves: clean vs attacked",
        risk_coverage.draw,
        captions.risk_coverage_caption,
    ),
    FigureSpec(
        "examples",
        "Example attacks",
        examples.draw,
        captions.examples_caption,
    ),
)
