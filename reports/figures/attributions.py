"""[attributions] Where the model looks: clean and adversarial attribution maps side by side.

One row per model, from its strongest attack at the chosen eps, showing the stored examples
(successful attacks first) as five images: the clean input, the adversarial input, the
perturbation (amplified as in the examples gallery), and the attribution map of the true
class on each input. The maps were computed when the job ran (reports never run a model);
each is shown on its own scale (brighter = more attribution), since what the stored rank
correlation compares is the pixels' order, not the maps' size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from reports.captions import chosen_with_rule, sentence
from reports.figures._common import FigureUnavailable, new_figure, show_image
from reports.figures.examples import Example, amplify, gallery
from reports.formatting import fmt_eps, pct
from reports.run_data import RunData
from reports.selection import result
from robustbench_local.results.store import JobKey

__all__ = ["ID", "PER_MODEL", "TITLE", "Explained", "caption", "draw", "explained", "why_none"]

ID = "attributions"
TITLE = "Where the model looks: attribution maps, clean vs adversarial"

PER_MODEL = 2  # examples shown per model
MAP_CMAP = "inferno"


@dataclass(frozen=True)
class Explained:
    """A stored example with its stored clean and adversarial maps (H, W)."""

    example: Example
    clean_map: np.ndarray
    adv_map: np.ndarray
    similarity: float  # Spearman rank correlation of the two maps (NaN if not stored)


def explained(run: RunData, key: JobKey, count: int = PER_MODEL) -> list[Explained]:
    """Up to ``count`` of the job's stored examples that have maps, successful attacks first."""
    maps = {idx: (clean, adv, rho) for idx, clean, adv, rho in run.explain_maps(key)}
    if not maps:
        return []
    out = []
    for example in gallery(run, key, count=len(run.examples(key))):
        if example.idx in maps:
            clean, adv, rho = maps[example.idx]
            out.append(Explained(example, clean, adv, rho))
    return out[:count]


def why_none(run: RunData, what: str) -> str:
    """Why a run stores no explanations, for a figure's "not drawn" reason."""
    if run.explain_disabled:
        return f"the run's [explain] section has enabled = false, so no {what} were computed"
    return f"the run stores no {what} (made before explanations were part of a run)"


def _prediction(pred: int, label: int) -> str:
    return f"pred {pred} ({'right' if pred == label else 'WRONG'})"


def _method(run: RunData) -> str:
    section = run.summary.run.config.get("explain")
    method = section.get("method") if isinstance(section, dict) else None
    return str(method or "saliency").replace("_", " ")


def _row_title(run: RunData, key: JobKey) -> str:
    attack, noise = _similarities(run, key)
    return (
        f"{key.model}: {key.attack} at eps {fmt_eps(key.eps)}; mean rank correlation with the "
        f"clean maps {_corr(attack)} (random noise of the same size: {_corr(noise)})"
    )


def _similarities(run: RunData, key: JobKey) -> tuple[float, float]:
    """The job's stored mean similarity under the attack and under the noise control."""
    row = result(run.summary, key.model, key.attack, key.eps)
    if row is None:
        return math.nan, math.nan
    return row.metric("attribution_similarity"), row.metric("attribution_similarity_noise")


def _corr(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


def draw(run: RunData) -> Figure:
    if run.chosen_eps is None:
        raise FigureUnavailable("no job at eps > 0 is stored, so there is no attack to show")
    rows = [
        shown
        for key in map(run.strongest, run.models)
        if key is not None and (shown := explained(run, key))
    ]
    if not rows:
        raise FigureUnavailable(
            why_none(run, f"attribution maps for the jobs at eps {fmt_eps(run.chosen_eps)}")
        )
    method = _method(run)
    per_row = max(len(r) for r in rows)
    fig = new_figure(7.6 * per_row + 0.3, 2.55 * len(rows))
    subfigs = np.atleast_1d(fig.subfigures(len(rows), 1, squeeze=False)).ravel()
    for sub, shown in zip(subfigs, rows, strict=True):
        key = shown[0].example.key
        sub.suptitle(
            _row_title(run, key), fontsize=9.5, color=run.palette.colour(key.model), weight="bold"
        )
        panels = np.atleast_1d(sub.subfigures(1, per_row, squeeze=False)).ravel()
        for i, (panel, item) in enumerate(zip(panels, shown, strict=False)):
            panel.set_facecolor("#F3F3F3" if i % 2 == 0 else "white")
            ex = item.example
            axes = panel.subplots(1, 5)
            perturbation, factor = amplify(ex.clean, ex.adv)
            scale = f"\u00d7{factor:.3g}" if factor else "(none)"
            show_image(
                axes[0],
                ex.clean,
                f"#{ex.idx} clean, label {ex.label}\n{_prediction(ex.clean_pred, ex.label)}",
            )
            show_image(axes[1], ex.adv, f"adversarial\n{_prediction(ex.adv_pred, ex.label)}")
            show_image(axes[2], perturbation, f"perturbation {scale}\ngrey = no change")
            clean_title = f"{method}, clean\n(class {ex.label})"
            show_image(axes[3], item.clean_map, clean_title, map_cmap=MAP_CMAP)
            show_image(
                axes[4],
                item.adv_map,
                f"{method}, adversarial\nrank corr. {_corr(item.similarity)}",
                map_cmap=MAP_CMAP,
            )
    return fig


def caption(run: RunData) -> str:
    method = _method(run)
    text = (
        f"Where each model looks ({method} maps of the true class, computed when the job ran; "
        "brighter = more attribution, each map on its own scale), for stored examples under "
        f"the model's strongest attack at {chosen_with_rule(run)}, successful attacks first: "
        "the clean and the adversarial image with their predictions, the perturbation "
        "amplified (grey is no change), and the map on each. The rank correlation is "
        "Spearman's between the clean and the adversarial map (1 = the same pixels in the "
        "same order)."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        if key is None or not explained(run, key):
            continue
        attack, noise = _similarities(run, key)
        subset = _subset_size(run, model)
        clause = (
            f"under {key.attack}, {model}'s maps keep a mean rank correlation of {_corr(attack)} "
            f"with the clean ones{subset} against {_corr(noise)} under random noise of the same "
            "size"
        )
        fooled = [e for e in explained(run, key) if e.example.fooled]
        if fooled:
            ex = fooled[0].example
            clause += (
                f" (on sample #{ex.idx}, label {ex.label}, which the attack turns into a "
                f"{ex.adv_pred} with {pct(ex.adv_confidence)} confidence, the two maps' rank "
                f"correlation is {_corr(fooled[0].similarity)})"
            )
        parts.append(clause)
    if parts:
        text += " " + sentence(parts)
    return text


def _subset_size(run: RunData, model: str) -> str:
    record = run.concepts().get(model)
    n = record.values.get("n_images") if record is not None else None
    return f" over {n} images" if isinstance(n, int) else ""
