"""Gradient-masking checks (after AutoAttack's): stored results in, warnings out.

A failed check means some number of the run may overstate robustness. Each warning says
which model, attack and eps, what was expected and what was measured, so a reviewer can
judge it; it goes into ``summary.json``, the report's headline and the console.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["masking_warnings"]

GRADIENT_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "pgd-adaptive")
ITERATIVE_ATTACKS = ("pgd", "apgd-ce", "apgd-dlr")
GRADIENT_FREE_ATTACKS = ("square",)
ZERO_GRADIENT_LIMIT = 0.05  # more samples than this with an all-zero input gradient
CHANCE_MARGIN = 0.10  # large-eps accuracy may exceed chance by this much
REPEAT_LIMIT = 1e-4  # output difference between two identical calls


def _tolerance(n: float) -> float:
    """Differences below this are noise: three samples, and never under one point."""
    return max(3.0 / max(n, 1.0), 0.01)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _by_model_eps(
    results: Sequence[Mapping[str, Any]], names: Mapping[str, str]
) -> dict[tuple[str, float], dict[str, Mapping[str, Any]]]:
    """(model, eps) -> attack registry name -> its result row (label kept in the row)."""
    table: dict[tuple[str, float], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for row in results:
        table[(row["model"], row["eps"])][names.get(row["attack"], row["attack"])] = row
    return table


def _monotone(results: Sequence[Mapping[str, Any]]) -> list[str]:
    series: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in results:
        series[(row["model"], row["attack"])].append(row)
    out = []
    for (model, attack), rows in sorted(series.items()):
        rows = sorted(rows, key=lambda r: r["eps"])
        for low, high in itertools.pairwise(rows):
            if high["accuracy"] > low["accuracy"] + _tolerance(high.get("n", 0)):
                out.append(
                    f"{model}: accuracy under {attack} rises with eps, from "
                    f"{_pct(low['accuracy'])} at eps {low['eps']:g} to "
                    f"{_pct(high['accuracy'])} at eps {high['eps']:g} (a larger ball holds "
                    f"every smaller one: the attack is failing to optimise)"
                )
    return out


def _ordering(table: Mapping[tuple[str, float], Mapping[str, Mapping[str, Any]]]) -> list[str]:
    out = []
    for (model, eps), attacks in sorted(table.items()):
        if eps == 0:
            continue
        fgsm = attacks.get("fgsm")
        for name in ITERATIVE_ATTACKS:
            row = attacks.get(name)
            if (
                fgsm is not None
                and row is not None
                and (row["accuracy"] > fgsm["accuracy"] + _tolerance(row.get("n", 0)))
            ):
                out.append(
                    f"{model}: {row['attack']} is weaker than fgsm at eps {eps:g} "
                    f"({_pct(row['accuracy'])} vs {_pct(fgsm['accuracy'])} robust accuracy): "
                    f"an iterative attack should never lose to its own first step"
                )
        white = [attacks[a]["accuracy"] for a in GRADIENT_ATTACKS if a in attacks]
        for name in GRADIENT_FREE_ATTACKS:
            row = attacks.get(name)
            if (
                row is not None
                and white
                and (row["accuracy"] < min(white) - _tolerance(row.get("n", 0)))
            ):
                out.append(
                    f"{model}: the gradient-free {row['attack']} beats every gradient attack "
                    f"at eps {eps:g} ({_pct(row['accuracy'])} vs {_pct(min(white))}): the "
                    f"gradients are likely masked and the gradient attacks overstate robustness"
                )
    return out


def _diagnosed(diagnostics: Mapping[str, Mapping[str, float]]) -> list[str]:
    out = []
    for model, d in sorted(diagnostics.items()):
        if d["nan_grad_fraction"] > 0:
            out.append(
                f"{model}: the input gradient holds NaN for "
                f"{_pct(d['nan_grad_fraction'])} of samples"
            )
        if d["zero_grad_fraction"] > ZERO_GRADIENT_LIMIT:
            out.append(
                f"{model}: the input gradient is exactly zero for "
                f"{_pct(d['zero_grad_fraction'])} of samples (a non-differentiable or "
                f"saturated layer): gradient attacks cannot move them"
            )
        if d["large_eps_accuracy"] > d["chance"] + CHANCE_MARGIN:
            out.append(
                f"{model}: at eps {d['large_eps']:g}, which covers every input, PGD "
                f"leaves {_pct(d['large_eps_accuracy'])} accuracy where chance is "
                f"{_pct(d['chance'])}: the attack cannot follow the gradients"
            )
        if d["repeat_max_abs_diff"] > REPEAT_LIMIT:
            out.append(
                f"{model}: two identical calls gave outputs {d['repeat_max_abs_diff']:.3g} "
                f"apart: randomness outside the run's seeds makes results irreproducible "
                f"and gradients noisy (attack it with EOT)"
            )
    return out


def masking_warnings(
    results: Sequence[Mapping[str, Any]],
    attack_names: Mapping[str, str],
    diagnostics: Mapping[str, Mapping[str, float]],
) -> list[str]:
    """Every failed check, as sentences.

    Args:
        results: one row per job (model, attack label, eps, accuracy, n, ...).
        attack_names: attack label -> registered attack name (from the config).
        diagnostics: model -> the numbers of `diagnostics.diagnose`.

    Returns:
        the warnings, grouped by check.
    """
    table = _by_model_eps(results, attack_names)
    return [*_monotone(results), *_ordering(table), *_diagnosed(diagnostics)]
