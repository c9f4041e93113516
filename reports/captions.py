"""What the figures' captions share; each caption lives in its figure's module.

A caption takes the `RunData` its figure was drawn from and returns plain text (escaped by
the page); numbers are written by `reports.formatting`.
"""

from __future__ import annotations

from reports.formatting import fmt_eps
from reports.run_data import RunData
from reports.selection import chosen_eps_rule

__all__ = ["at_chosen", "chosen_with_rule", "sentence"]


def sentence(clauses: list[str]) -> str:
    """Clauses joined into one sentence; only the first letter is raised (names keep case)."""
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."


def at_chosen(run: RunData) -> str:
    """The chosen eps as a caption names it ("eps 0.1"; "eps 0" when none is positive)."""
    return f"eps {fmt_eps(run.chosen_eps)}" if run.chosen_eps is not None else "eps 0"


def chosen_with_rule(run: RunData) -> str:
    """The chosen eps and the rule that chose it."""
    return f"eps {fmt_eps(run.chosen_eps)} (chosen as {chosen_eps_rule()})"
