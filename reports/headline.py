"""The headline numbers of a run, one row per model, from its summary alone.

Shared by the run report's headline table and the leaderboard, so both say the same thing;
`shift_comparison` is the sentence that sets the run's adversarial numbers beside its
natural-shift (corruption) numbers, on the page and in the console; `worst_class_sentence`
names each model's worst class at the chosen eps; `transform_sentence` says how often each
model's adversarial examples survive random transformations (EOT attacks) there.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from reports.formatting import auroc, fmt_eps, pct
from reports.selection import (
    chosen_eps,
    deterministic_models,
    eps_values,
    model_order,
    reference_severity,
    result,
    shift_rows_at,
    strongest_attack,
    transform_attack,
    transform_params,
)
from robustbench_local.results.records import Summary, WorstCaseRow
from robustbench_local.results.schema import DETECTION_SCORES

__all__ = [
    "DETECTION_SCORES",
    "SHORT",
    "Headline",
    "ModelRow",
    "attack_label",
    "headline",
    "shift_comparison",
    "tie_note",
    "transform_sentence",
    "worst_class_phrase",
    "worst_class_sentence",
]

SHORT = {"confidence": "conf.", "total": "total", "epistemic": "epist."}  # table headers


@dataclass(frozen=True)
class ModelRow:
    """One model's headline numbers (fractions in [0, 1]; NaN where not stored).

    Attributes:
        model: the model's name.
        clean_accuracy: median clean accuracy over the model's jobs (equal across jobs
            unless the model is stochastic).
        worst_accuracy: eps -> robust accuracy against all attacks at once (per sample).
        attack: the strongest attack at the chosen eps (None if no job there).
        accuracy: robust accuracy under that attack.
        mean_confidence: mean confidence on its adversarial inputs.
        ece_clean, ece_adv: calibration error on the clean and the adversarial inputs.
        auroc: score -> AUROC of telling that attack's adversarial inputs from clean ones.
    """

    model: str
    clean_accuracy: float
    worst_accuracy: dict[float, float]
    attack: str | None
    accuracy: float = math.nan
    mean_confidence: float = math.nan
    ece_clean: float = math.nan
    ece_adv: float = math.nan
    auroc: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Headline:
    """A run's headline: its eps values, the chosen eps and one row per model."""

    eps: list[float]
    chosen_eps: float | None
    rows: list[ModelRow]


def _clean_accuracy(summary: Summary, model: str) -> float:
    values = [r.metric("clean_accuracy") for r in summary.rows_of(model)]
    values = [v for v in values if not math.isnan(v)]
    # The median: exactly the shared value when every job agrees (a deterministic model).
    return statistics.median(values) if values else math.nan


def attack_label(summary: Summary, attack: str | None) -> str:
    """A headline's strongest attack, marked when it is a detection-evasion attack."""
    if attack is None:
        return "n/a"
    kinds = {r.kind for r in summary.results if r.attack == attack}
    return f"{attack} (detection-evasion)" if kinds == {"adaptive"} else attack


def headline(summary: Summary, eps: float | None = None) -> Headline:
    """Per-model headline numbers.

    Args:
        summary: a run summary.
        eps: the eps for the attack-specific columns; default `selection.chosen_eps`.

    Returns:
        The Headline; models in config order.
    """
    all_eps = eps_values(summary)
    eps = chosen_eps(all_eps) if eps is None else eps
    rows = []
    for model in model_order(summary):
        worst = {w.eps: w.accuracy for w in summary.worst_case if w.model == model}
        attack = None if eps is None else strongest_attack(summary, model, eps)
        row = None if attack is None or eps is None else result(summary, model, attack, eps)
        if row is None:
            rows.append(ModelRow(model, _clean_accuracy(summary, model), worst, None))
            continue
        rows.append(
            ModelRow(
                model=model,
                clean_accuracy=_clean_accuracy(summary, model),
                worst_accuracy=worst,
                attack=attack,
                accuracy=row.accuracy,
                mean_confidence=row.metric("mean_confidence"),
                ece_clean=row.metric("clean_ece"),
                ece_adv=row.metric("ece"),
                auroc={s: row.metric(f"auroc_{s}") for s in DETECTION_SCORES},
            )
        )
    return Headline(eps=all_eps, chosen_eps=eps, rows=rows)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan


def shift_comparison(summary: Summary, head: Headline) -> str | None:
    """One sentence per run: each model's robust accuracy and detection AUROC under its
    strongest attack at the chosen eps, beside its accuracy and AUROC on corrupted inputs
    at `selection.reference_severity`, averaged over the corruptions stored there.

    The score is epistemic uncertainty, or total uncertainty for a model without epistemic
    signal (a single deterministic network); the same score on both sides. AUROC is how well
    the score ranks shifted above clean inputs, not a share of inputs flagged, and the
    sentence says so.

    Returns:
        the sentence, or None when the run has no attack at an eps > 0 or no corruption job.
    """
    severity = reference_severity(summary)
    if severity is None or head.chosen_eps is None:
        return None
    flat = set(deterministic_models(summary))
    parts = []
    counts = set()
    for row in head.rows:
        shifted = shift_rows_at(summary, row.model, severity)
        if row.attack is None or not shifted:
            continue
        counts.add(len(shifted))
        score = "total" if row.model in flat else "epistemic"
        attack = attack_label(summary, row.attack)
        parts.append(
            f"{row.model}: robust accuracy {pct(row.accuracy)} under {attack} at eps "
            f"{fmt_eps(head.chosen_eps)} against {pct(_mean([r.accuracy for r in shifted]))} "
            f"on severity-{severity} corruptions; {score}-uncertainty AUROC "
            f"{auroc(row.auroc.get(score, math.nan))} on the attacked inputs against "
            f"{auroc(_mean([r.metric(f'auroc_{score}') for r in shifted]))} on the corrupted ones"
        )
    if not parts:
        return None
    over = f"the {counts.pop()}" if len(counts) == 1 else "the"
    return (
        "Adversarial against natural shift (AUROC: how well the score ranks shifted inputs "
        "above their clean originals, 0.5 is chance; epistemic uncertainty, or total for a "
        "model without epistemic signal; corruption numbers are means over "
        f"{over} corruptions stored at severity {severity}): " + "; ".join(parts) + "."
    )


def tie_note(ties: tuple[str, ...], limit: int = 5) -> str:
    """What follows a worst class that others share (", tied with 3, 4 and 2 more"); ""
    when none does."""
    if not ties:
        return ""
    more = f" and {len(ties) - limit} more" if len(ties) > limit else ""
    return f", tied with {', '.join(ties[:limit])}{more}"


def worst_class_phrase(worst: WorstCaseRow) -> str:
    """ "worst class 3" (", tied with ..." where others share it), or "every class equal"
    where no class is worse than another (naming one of them would single it out)."""
    if worst.worst_class_ties and worst.class_accuracy_gap == 0:
        return "every class equal"
    return f"worst class {worst.worst_class}{tie_note(worst.worst_class_ties)}"


def worst_class_sentence(summary: Summary, head: Headline) -> str | None:
    """One sentence per run: each model's worst class at the chosen eps under all attacks at
    once (per sample, as the headline's eps columns), its robust accuracy beside the
    model's over all samples.

    Returns:
        the sentence, or None when there is no chosen eps or no worst case there that knows
        its worst class (a summary.json written before per-class numbers).
    """
    if head.chosen_eps is None:
        return None
    parts = []
    for row in head.rows:
        worst = next(
            (
                w
                for w in summary.worst_case
                if w.model == row.model and w.eps == head.chosen_eps and w.worst_class is not None
            ),
            None,
        )
        if worst is not None:
            parts.append(
                f"{row.model}: {worst_class_phrase(worst)} (robust accuracy "
                f"{pct(worst.worst_class_accuracy)} vs {pct(worst.accuracy)} overall)"
            )
    if not parts:
        return None
    return (
        f"Worst class at eps {fmt_eps(head.chosen_eps)}, under all attacks at once (robust "
        "accuracy within the class, against the model's over all samples): "
        + "; ".join(parts)
        + "."
    )


def transform_sentence(summary: Summary, head: Headline) -> str | None:
    """One sentence per run: for each model, the share of its correctly classified inputs
    whose adversarial example, from its EOT attack at the chosen eps (the one whose examples
    survive most often: `selection.transform_attack`), still fools it on at least the robust
    fraction of fresh random transformations, beside the share the transformations fool
    alone.

    Returns:
        the sentence, or None when there is no chosen eps or no EOT job there.
    """
    if head.chosen_eps is None:
        return None
    parts = []
    for row in head.rows:
        attack = transform_attack(summary, row.model, head.chosen_eps)
        job = None if attack is None else result(summary, row.model, attack, head.chosen_eps)
        if attack is None or job is None:
            continue
        p = transform_params(summary, attack)
        parts.append(
            f"{row.model}: {attack}'s examples stay adversarial on \u2265 "
            f"{pct(p.robust_fraction)} of {p.eval_draws} random {'+'.join(p.transforms)} draws "
            f"(severity {p.severity}) for {pct(job.metric('transform_success_rate'))} of the "
            "correctly classified inputs, against "
            f"{pct(job.metric('attack_success_rate'))} fooled without transformation (the "
            f"transformations alone: {pct(job.metric('transform_clean_error_rate'))})"
        )
    if not parts:
        return None
    return (
        f"Adversarial examples under random transformations at eps {fmt_eps(head.chosen_eps)}: "
        + "; ".join(parts)
        + "."
    )
