"""What a report looks at: model, attack and eps order, the chosen eps, the strongest attack.

Everything here reads a `Summary` (``results.summary.summarize``, or ``summary.json``
read back with ``read_summary``), so the run report and the leaderboard choose the same way.

The chosen eps: the largest stored eps in (0, 0.1], else the smallest positive eps, else
None (a run with only eps = 0). The strongest attack of a model at an eps is the attack with
the lowest robust accuracy there (the first in config order on a tie).

Attacks over random transformations (kind "eot", pgd-eot): which of them a report shows for a
model at an eps (`transform_attack`, the one whose examples survive the transformations most
often) and how the run configured them (`transform_params`).

Distribution shift: corruptions and OOD sets in the order of the config's [shift] section,
the severity a comparison quotes (`reference_severity`), and why a shift figure or table
has nothing to show (`shift_missing`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from reports.formatting import fmt_eps
from robustbench_local.results.records import ResultRow, ShiftRow, Summary

__all__ = [
    "CHOSEN_EPS_LIMIT",
    "EOT_KIND",
    "REFERENCE_SEVERITY",
    "TransformParams",
    "attack_order",
    "chosen_eps",
    "chosen_eps_rule",
    "clean_reference",
    "corruption_order",
    "deterministic_models",
    "eps_values",
    "model_order",
    "ood_order",
    "reference_severity",
    "result",
    "severities",
    "shift_missing",
    "shift_rows_at",
    "strongest_attack",
    "transform_attack",
    "transform_attacks",
    "transform_params",
]

# The severity a headline quotes for natural shift: the middle of CIFAR-10-C's 1..5.
REFERENCE_SEVERITY = 3

# The kind of the attacks over random transformations (`schema.KINDS`).
EOT_KIND = "eot"

# The chosen eps is the largest one at or below this (8/255 = 0.031 and 0.1 both qualify).
CHOSEN_EPS_LIMIT = 0.1


def _config_names(summary: Summary, table: str, field: str) -> list[str]:
    entries = summary.run.config.get(table) or []
    return [str(e[field]) for e in entries if isinstance(e, Mapping) and field in e]


def _ordered(preferred: Iterable[str], present: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(present))
    ordered = [name for name in dict.fromkeys(preferred) if name in present]
    return ordered + sorted(name for name in present if name not in ordered)


def model_order(summary: Summary, *, include_pending: bool = False) -> list[str]:
    """Model names in config order (then any others the store holds, sorted).

    Args:
        summary: a run summary.
        include_pending: also list config models that have no stored job yet, so that a
            model's colour depends on its place in the config only.
    """
    configured = _config_names(summary, "models", "name")
    stored = [
        *(r.model for r in summary.results),
        *(r.model for r in summary.shift),
        *(r.model for r in summary.ood),
    ]
    if include_pending:
        stored = [*configured, *stored]
    return _ordered(configured, stored)


def attack_order(summary: Summary) -> list[str]:
    """Attack labels with a stored job, in config order (then others, sorted)."""
    configured = _config_names(summary, "attacks", "label")
    return _ordered(configured, (r.attack for r in summary.results))


def eps_values(summary: Summary) -> list[float]:
    """Every stored eps, ascending."""
    return sorted({r.eps for r in summary.results})


def chosen_eps(eps: Iterable[float], limit: float = CHOSEN_EPS_LIMIT) -> float | None:
    """The eps a report zooms in on (see the module docstring); None if none is positive."""
    positive = sorted(e for e in eps if e > 0)
    if not positive:
        return None
    below = [e for e in positive if e <= limit]
    return below[-1] if below else positive[0]


def chosen_eps_rule(limit: float = CHOSEN_EPS_LIMIT) -> str:
    """The rule behind `chosen_eps`, in words, for captions."""
    return (
        f"the largest eps \u2264 {fmt_eps(limit)} that is > 0, else the smallest positive eps; "
        "per model, the attack with the lowest robust accuracy there"
    )


def result(summary: Summary, model: str, attack: str, eps: float) -> ResultRow | None:
    """The stored row of one job, or None."""
    for row in summary.results:
        if row.model == model and row.attack == attack and row.eps == eps:
            return row
    return None


def strongest_attack(summary: Summary, model: str, eps: float) -> str | None:
    """The attack with the lowest robust accuracy for ``model`` at ``eps``; None if none."""
    best: tuple[float, str] | None = None
    for attack in attack_order(summary):
        row = result(summary, model, attack, eps)
        if row is None:
            continue
        accuracy = row.accuracy
        if math.isnan(accuracy):
            continue
        if best is None or accuracy < best[0]:
            best = (accuracy, attack)
    return None if best is None else best[1]


def _shift_config(summary: Summary) -> Mapping[str, object] | None:
    section = summary.run.config.get("shift")
    return section if isinstance(section, Mapping) else None


def _shift_list(summary: Summary, key: str) -> list[str]:
    values = (_shift_config(summary) or {}).get(key)
    return [str(v) for v in values] if isinstance(values, list) else []


def corruption_order(summary: Summary) -> list[str]:
    """Corruptions with a stored job, in the config's order (then others, sorted)."""
    return _ordered(_shift_list(summary, "corruptions"), (r.corruption for r in summary.shift))


def ood_order(summary: Summary) -> list[str]:
    """OOD sets with a stored job, in the config's order (then others, sorted)."""
    return _ordered(_shift_list(summary, "ood"), (r.ood for r in summary.ood))


def severities(summary: Summary) -> list[int]:
    """Every stored corruption severity, ascending."""
    return sorted({r.severity for r in summary.shift})


def reference_severity(summary: Summary) -> int | None:
    """`REFERENCE_SEVERITY` when stored, else the middle stored severity; None if none."""
    stored = severities(summary)
    if not stored:
        return None
    return REFERENCE_SEVERITY if REFERENCE_SEVERITY in stored else stored[len(stored) // 2]


def shift_rows_at(summary: Summary, model: str, severity: int) -> list[ShiftRow]:
    """The model's corruption rows at one severity, one per corruption."""
    return [r for r in summary.shift if r.model == model and r.severity == severity]


def clean_reference(summary: Summary, model: str) -> tuple[float, float]:
    """(accuracy, ECE) of the model on the clean test inputs, for severity 0 of the shift
    figures: the clean accuracy and clean ECE its attack jobs stored, median over them
    (every job evaluates the same clean inputs; the median is that shared value for a
    deterministic model, as in the headline table). NaN when it has no attack job."""

    def median(metric: str) -> float:
        values = [r.metric(metric) for r in summary.rows_of(model)]
        values = [v for v in values if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    return median("clean_accuracy"), median("clean_ece")


def deterministic_models(summary: Summary) -> list[str]:
    """Models whose stored epistemic uncertainty is 0 in every job (one plain network), in
    model order: their epistemic score cannot flag anything."""
    out = []
    for model in model_order(summary):
        values = [
            *(
                r.metric(m)
                for r in summary.rows_of(model)
                for m in ("mean_epistemic", "clean_mean_epistemic")
            ),
            *(r.metric("mean_epistemic") for r in summary.shift if r.model == model),
        ]
        if values and all(v == 0 for v in values):
            out.append(model)
    return out


def shift_missing(summary: Summary, kind: Literal["corruption", "ood"]) -> str | None:
    """Why a run has no stored job of this kind to show (None when it has some)."""
    rows = summary.shift if kind == "corruption" else summary.ood
    if rows:
        return None
    section = _shift_config(summary)
    if section is None:
        return "the run has no [shift] section"
    key, noun = ("corruptions", "corruptions") if kind == "corruption" else ("ood", "ood sets")
    if key in section and not section[key]:
        return f"the run's [shift] section lists no {noun}"
    what = "corruption" if kind == "corruption" else "out-of-distribution"
    return f"no {what} job is stored yet"


@dataclass(frozen=True)
class TransformParams:
    """How an EOT attack drew its transformations and judged its examples.

    Attributes:
        transforms: the transformations' names, composed in this order.
        severity: 1..5, their range.
        robust_fraction: an example counts as robust when it fools on at least this share
            of the fresh draws.
        eval_draws: the fresh draws each example is judged on.
    """

    transforms: tuple[str, ...]
    severity: int
    robust_fraction: float
    eval_draws: int

    @property
    def described(self) -> str:
        """ "rotate+brightness, severity 3" """
        names = "+".join(self.transforms) or "unknown transformations"
        return f"{names}, severity {self.severity or '?'}"


def transform_attacks(summary: Summary) -> list[str]:
    """The attacks over random transformations (kind "eot") with a stored job, in order."""
    eot = {r.attack for r in summary.results if r.kind == EOT_KIND}
    return [a for a in attack_order(summary) if a in eot]


def transform_params(summary: Summary, attack: str) -> TransformParams:
    """The EOT attack's transformations and judgement, as it ran (the parameters the runner
    stored with its kind: the attack's defaults and the config's choices). Where a store
    lacks them (made before they were recorded) the config entry's own choices are read,
    and a value neither holds reads as unknown: no transforms, severity 0, NaN fraction,
    0 draws (shown as such rather than guessed)."""
    params: Mapping[str, Any] = summary.run.attack_params.get(attack) or {}
    if not params:
        for entry in summary.run.config.get("attacks") or []:
            if isinstance(entry, Mapping) and str(entry.get("label")) == attack:
                found = entry.get("params")
                params = found if isinstance(found, Mapping) else {}
                break

    def number(key: str, kind: type, unknown: float) -> Any:
        value = params.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return kind(value) if ok else kind(unknown)

    names = params.get("transforms")
    readable = isinstance(names, list | tuple) and all(isinstance(v, str) for v in names)
    return TransformParams(
        transforms=tuple(names) if readable else (),
        severity=number("severity", int, 0),
        robust_fraction=number("robust_fraction", float, math.nan),
        eval_draws=number("eval_draws", int, 0),
    )


def transform_attack(summary: Summary, model: str, eps: float) -> str | None:
    """The EOT attack whose examples survive the transformations most often for ``model`` at
    ``eps`` (the highest stored transform success rate; the first in config order on a tie,
    or when none is defined); None without an EOT job there."""
    best: tuple[float, str] | None = None
    for attack in transform_attacks(summary):
        row = result(summary, model, attack, eps)
        if row is None:
            continue
        rate = row.metric("transform_success_rate")
        rate = -1.0 if math.isnan(rate) else rate
        if best is None or rate > best[0]:
            best = (rate, attack)
    return None if best is None else best[1]
