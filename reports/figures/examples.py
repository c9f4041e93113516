"""[examples] A gallery: clean image, amplified perturbation, adversarial image.

One row per model, from its strongest attack at the chosen eps, showing the stored examples
(successful attacks first). Each image is titled with the stored label, prediction, confidence
and epistemic uncertainty of that sample. The perturbation is scaled so its largest entry
reaches the edge of the display range; grey (0.5) is no change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from reports.captions import chosen_with_rule, sentence
from reports.figures._common import FigureUnavailable, new_figure, show_image
from reports.formatting import fmt_eps, nats, pct
from reports.run_data import RunData
from robustbench_local.results.store import JobKey

__all__ = ["ID", "PER_MODEL", "TITLE", "Example", "amplify", "caption", "draw", "gallery"]

ID = "examples"
TITLE = "Example attacks"

PER_MODEL = 2  # examples shown per model


@dataclass(frozen=True)
class Example:
    """One stored example with its per-sample numbers (clean and adversarial)."""

    key: JobKey
    idx: int
    clean: np.ndarray  # (C, H, W)
    adv: np.ndarray
    label: int
    clean_pred: int
    clean_confidence: float
    clean_epistemic: float
    adv_pred: int
    adv_confidence: float
    adv_epistemic: float

    @property
    def fooled(self) -> bool:
        """Correct when clean, wrong when attacked."""
        return self.clean_pred == self.label and self.adv_pred != self.label


def gallery(run: RunData, key: JobKey, count: int = PER_MODEL) -> list[Example]:
    """Up to ``count`` of the job's stored examples, successful attacks first."""
    s = run.samples(key)
    position = {int(i): p for p, i in enumerate(s["idx"])}
    out = []
    for idx, clean, adv in run.examples(key):
        p = position.get(idx)
        if p is None:
            continue
        out.append(
            Example(
                key,
                idx,
                clean,
                adv,
                int(s["label"][p]),
                int(s["clean_pred"][p]),
                float(s["clean_confidence"][p]),
                float(s["clean_epistemic"][p]),
                int(s["adv_pred"][p]),
                float(s["adv_confidence"][p]),
                float(s["adv_epistemic"][p]),
            )
        )
    out.sort(key=lambda e: not e.fooled)  # stable: stored order within each group
    return out[:count]


def amplify(clean: np.ndarray, adv: np.ndarray) -> tuple[np.ndarray, float]:
    """(perturbation scaled into [0, 1] around 0.5, the factor); factor 0 for no change."""
    delta = adv.astype(np.float64) - clean.astype(np.float64)
    largest = float(np.abs(delta).max()) if delta.size else 0.0
    if largest == 0.0:
        return np.full(delta.shape, 0.5), 0.0
    factor = 0.5 / largest
    return np.clip(0.5 + factor * delta, 0.0, 1.0), factor


def _verdict(pred: int, label: int, confidence: float, epistemic: float) -> str:
    mark = "right" if pred == label else "WRONG"
    return f"pred {pred} ({mark})\nconf {pct(confidence)}\nepistemic {nats(epistemic)}"


def draw(run: RunData) -> Figure:
    if run.chosen_eps is None:
        raise FigureUnavailable("no job at eps > 0 is stored, so there is no attack to show")
    rows = []
    for key in map(run.strongest, run.models):
        if key is not None:
            examples = gallery(run, key)
            if examples:
                rows.append(examples)
    if not rows:
        raise FigureUnavailable(
            f"no example images are stored for the jobs at eps {fmt_eps(run.chosen_eps)}"
        )
    per_row = max(len(r) for r in rows)
    fig = new_figure(5.3 * per_row + 0.3, 2.75 * len(rows))
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1, squeeze=False)).ravel()
    for sub, examples in zip(subfigs, rows, strict=True):
        key = examples[0].key
        sub.suptitle(
            f"{key.model}: {key.attack} at eps {fmt_eps(key.eps)}",
            fontsize=10,
            color=run.palette.colour(key.model),
            weight="bold",
        )
        # One panel of three images per example, tinted alternately so the triples read apart.
        panels = np.atleast_1d(sub.subfigures(1, per_row, squeeze=False)).ravel()
        for i, (panel, ex) in enumerate(zip(panels, examples, strict=False)):
            panel.set_facecolor("#F3F3F3" if i % 2 == 0 else "white")
            axes = panel.subplots(1, 3)
            perturbation, factor = amplify(ex.clean, ex.adv)
            scale = f"\u00d7{factor:.3g}" if factor else "(none)"
            show_image(
                axes[0],
                ex.clean,
                f"#{ex.idx} clean, label {ex.label}\n"
                + _verdict(ex.clean_pred, ex.label, ex.clean_confidence, ex.clean_epistemic),
            )
            show_image(axes[1], perturbation, f"perturbation {scale}\ngrey = no change")
            show_image(
                axes[2],
                ex.adv,
                "adversarial\n"
                + _verdict(ex.adv_pred, ex.label, ex.adv_confidence, ex.adv_epistemic),
            )
    return fig


def caption(run: RunData) -> str:
    text = (
        "Stored examples, successful attacks first: the clean image, the perturbation "
        "amplified to the full display range (factor in its title; grey is no change) and the "
        "adversarial image, each with the stored label, prediction, confidence and epistemic "
        f"uncertainty. Each model is shown under its strongest attack at {chosen_with_rule(run)}."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        shown = [] if key is None else gallery(run, key)
        if shown:
            ex = shown[0]
            parts.append(
                f"under {key.attack}, {model} predicts sample #{ex.idx} (label {ex.label}) as "
                f"{ex.adv_pred} with {pct(ex.adv_confidence)} confidence and epistemic "
                f"uncertainty {nats(ex.adv_epistemic)} (clean: {ex.clean_pred}, "
                f"{pct(ex.clean_confidence)})"
            )
    if parts:
        text += " " + sentence(parts)
    return text
