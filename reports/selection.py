"""What a report looks at: model, attack and eps order, the chosen eps, the strongest attack.

Everything here reads a `Summary` (``results.summary.summarize``, or ``summary.json``
read back with ``read_summary``), so the run report and the leaderboard choose the same way.

The chosen eps: the largest stored eps in (0, 0.1], else the smallest positive eps, else
None (a run with only eps = 0). The strongest attack of a model at an eps is the attack with
the lowest robust accuracy there (the first in config order on a tie).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from reports.formatting import fmt_eps
from robustbench_local.results.records import ResultRow, Summary

__all__ = [
    "CHOSEN_EPS_LIMIT",
    "attack_order",
    "chosen_eps",
    "chosen_eps_rule",
    "eps_values",
    "model_order",
    "result",
    "strongest_attack",
]

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
    stored = [r.model for r in summary.results]
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
