"""Figure captions that state this run's numbers, one function per figure id.

Each takes the `RunData` the figure was drawn from and returns plain text (escaped by the
page). Numbers: accuracies and confidences as percentages with one decimal ("3.0%"), ECE and
AURC with three decimals (two significant digits below 0.001), AUROC with two, uncertainty
in nats with three.
"""

from __future__ import annotations

import math

from reports.figures import examples, reliability, risk_coverage
from reports.headline import DETECTION_SCORES
from reports.run_data import RunData
from reports.selection import chosen_eps_rule, fmt_eps, num
from robustbench_local.results.schema import MIN_DETECTION_GROUP

__all__ = ["CAPTIONS", "auroc", "nats", "pct", "three"]


def pct(value: float) -> str:
    """A fraction as a percentage, "n/a" when undefined: 0.0312 -> "3.1%"."""
    value = num(value)
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def three(value: float) -> str:
    """Three decimals ("0.173"); below 0.001 two significant digits ("2.3e-04"), not "0.000"."""
    value = num(value)
    if math.isnan(value):
        return "n/a"
    return f"{value:.1e}" if 0 < abs(value) < 0.001 else f"{value:.3f}"


def auroc(value: float) -> str:
    value = num(value)
    return "undefined" if math.isnan(value) else f"{value:.2f}"


def nats(value: float) -> str:
    value = num(value)
    return "n/a" if math.isnan(value) else f"{value:.3f} nats"


def _sentence(clauses: list[str]) -> str:
    """Clauses joined into one sentence; only the first letter is raised (names keep case)."""
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."


def _at(run: RunData) -> str:
    return f"eps {fmt_eps(run.chosen_eps)}" if run.chosen_eps is not None else "eps 0"


def _rule(run: RunData) -> str:
    return f"eps {fmt_eps(run.chosen_eps)} (chosen as {chosen_eps_rule()})"


def accuracy_vs_eps(run: RunData) -> str:
    text = (
        "Robust accuracy (%) against eps, one panel per attack, and the worst case over "
        "attacks (a sample counts as robust only if it is classified correctly when clean and "
        "under every attack at that eps; clean errors count as not robust). At eps 0 the "
        "accuracy is the clean accuracy."
    )
    positive = [e for e in run.eps_values if e > 0]
    for eps in dict.fromkeys([e for e in (run.chosen_eps, max(positive, default=None)) if e]):
        parts = []
        for row in run.headline.rows:
            worst = row.worst_accuracy.get(eps)
            if worst is not None:
                parts.append(f"{row.model} {pct(worst)} (clean {pct(row.clean_accuracy)})")
        if parts:
            text += f" Worst case at eps {fmt_eps(eps)}: " + "; ".join(parts) + "."
    return text


def confidence_vs_accuracy(run: RunData) -> str:
    text = (
        "Top: per model, robust accuracy (solid) and mean confidence on the attacked inputs "
        "(dashed) against eps, under the strongest attack at each eps (the one with the lowest "
        "robust accuracy there); the shaded gap is overconfidence. Bottom: robust accuracy "
        "against mean confidence, one point per eps; below the dotted diagonal a model is more "
        "confident than it is right."
    )
    sentences = []
    for row in run.headline.rows:
        if row.attack is None:
            continue
        sentences.append(
            f"under {row.attack} at eps {fmt_eps(run.chosen_eps)} the {row.model} model keeps "
            f"{pct(row.mean_confidence)} mean confidence while its accuracy is {pct(row.accuracy)}"
        )
    if sentences:
        text += " " + _sentence(sentences)
    return text


def uncertainty_vs_eps(run: RunData) -> str:
    text = (
        "Mean aleatoric (expected entropy of the members' predictions) and epistemic (mutual "
        "information between prediction and member) uncertainty, in nats, on the attacked "
        "inputs against eps; line style = attack."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        if key is None:
            continue
        s = run.samples(key)
        parts.append(
            f"{model}: aleatoric {nats(s['clean_aleatoric'].mean())} clean vs "
            f"{nats(s['adv_aleatoric'].mean())} under {key.attack}, epistemic "
            f"{nats(s['clean_epistemic'].mean())} vs {nats(s['adv_epistemic'].mean())}"
        )
    if parts:
        text += f" At {_at(run)}: " + "; ".join(parts) + "."
    deterministic = run.deterministic_models()
    if deterministic:
        text += (
            f" Epistemic uncertainty is 0 at every eps for {', '.join(deterministic)}: "
            "a single deterministic network has no disagreement to measure."
        )
    return text


def detection_auroc_vs_eps(run: RunData) -> str:
    text = (
        "The detection protocol of Smith and Gal (2018): AUROC of telling attacked inputs "
        "from their clean originals (eps > 0), per score: low confidence, total uncertainty, "
        "epistemic uncertainty; top row over all attacked inputs, bottom row over the "
        f"successful attacks only (left out where fewer than {MIN_DETECTION_GROUP} "
        "succeeded: an AUROC on a handful of inputs is luck). Faint lines are the control, "
        "clean inputs plus random noise of the attack's norm: a score that flags noise as "
        "well as attacks detects perturbation, not attacks. 0.5 is chance; below 0.5 the "
        "attacked inputs look more certain than the clean ones. Line style = attack."
    )
    parts = []
    for row in run.headline.rows:
        if row.attack is None or run.chosen_eps is None:
            continue
        scores = ", ".join(f"{s} {auroc(row.auroc.get(s, math.nan))}" for s in DETECTION_SCORES)
        extra = ", ".join(
            f"epistemic {label} {auroc(_at_eps(run, row.model, row.attack, metric))}"
            for label, metric in (
                ("successful only", "auroc_epistemic_successful"),
                ("noise control", "auroc_epistemic_noise"),
            )
        )
        parts.append(f"{row.model} ({row.attack}): {scores}; {extra}")
    if parts:
        text += f" Under the strongest attack at {_at(run)}: " + "; ".join(parts) + "."
    return text


def _at_eps(run: RunData, model: str, attack: str, metric: str) -> float:
    """The metric of one job at the chosen eps (NaN when it was not stored)."""
    eps, values = run.curve(model, attack, metric)
    match = [v for e, v in zip(eps, values, strict=True) if e == run.chosen_eps]
    return float(match[0]) if match else math.nan


def reliability_caption(run: RunData) -> str:
    text = (
        f"Reliability diagrams ({reliability.N_BINS} equal-width confidence bins: accuracy in "
        "each bin against its mean confidence, marker area \u221d inputs in the bin; on the dotted "
        "diagonal a model is calibrated) "
        "and confidence histograms, clean inputs (grey) vs attacked inputs (model colour). "
        f"Each model is shown under its strongest attack at {_rule(run)}."
    )
    parts = [
        f"{row.model} {three(row.ece_clean)} \u2192 {three(row.ece_adv)} ({row.attack})"
        for row in run.headline.rows
        if row.attack is not None
    ]
    if parts:
        text += " ECE clean \u2192 attacked: " + "; ".join(parts) + "."
    return text


def risk_coverage_caption(run: RunData) -> str:
    text = (
        "Risk-coverage curves: keep the most confident inputs first and plot the error rate "
        "among those kept; a lower curve means confidence ranks errors last. Left clean, right "
        f"attacked, each model under its strongest attack at {_rule(run)}."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        if key is None or not len(run.samples(key)["idx"]):
            continue
        _, clean = risk_coverage.curve(run, key, "clean")
        _, adv = risk_coverage.curve(run, key, "adv")
        parts.append(f"{model} {three(clean)} \u2192 {three(adv)} ({key.attack})")
    if parts:
        text += " AURC (lower is better) clean \u2192 attacked: " + "; ".join(parts) + "."
    return text


def examples_caption(run: RunData) -> str:
    text = (
        "Stored examples, successful attacks first: the clean image, the perturbation "
        "amplified to the full display range (factor in its title; grey is no change) and the "
        "adversarial image, each with the stored label, prediction, confidence and epistemic "
        f"uncertainty. Each model is shown under its strongest attack at {_rule(run)}."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        shown = [] if key is None else examples.gallery(run, key)
        if shown:
            ex = shown[0]
            parts.append(
                f"under {key.attack}, {model} predicts sample #{ex.idx} (label {ex.label}) as "
                f"{ex.adv_pred} with {pct(ex.adv_confidence)} confidence and epistemic "
                f"uncertainty {nats(ex.adv_epistemic)} (clean: {ex.clean_pred}, "
                f"{pct(ex.clean_confidence)})"
            )
    if parts:
        text += " " + _sentence(parts)
    return text


CAPTIONS = {
    "accuracy_vs_eps": accuracy_vs_eps,
    "confidence_vs_accuracy": confidence_vs_accuracy,
    "uncertainty_vs_eps": uncertainty_vs_eps,
    "detection_auroc_vs_eps": detection_auroc_vs_eps,
    "reliability": reliability_caption,
    "risk_coverage": risk_coverage_caption,
    "examples": examples_caption,
}
