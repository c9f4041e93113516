"""A run's summary: the numbers of ``summary.json``, derived from the store alone.

Rows of a "detection-evasion" (adaptive) attack carry `ADAPTIVE_NOTE`: its robust accuracy
is not a bound. They stay in the worst case: every sample such an attack fools is a
misclassified input inside the eps-ball, so it can only lower the per-sample worst case,
and rightly; where it fails it submits the clean input, whose verdict (correct when clean)
every row already requires, so it cannot raise the worst case either. A worst case made of
adaptive attacks alone is no robustness bound, and its row says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_local.results.masking import (
    ProbeComparison,
    compare_probe,
    masking_warnings,
)
from robustbench_local.results.schema import ADAPTIVE_NOTE, AttackInfo, attack_infos
from robustbench_local.results.store import JobKey, ResultsStore

__all__ = [
    "probe_comparisons",
    "row_notes",
    "run_notes",
    "summarize",
    "worst_case",
    "write_summary",
]

ONLY_ADAPTIVE_NOTE = (
    "only detection-evasion attacks at this eps: not a robustness bound (add a gradient "
    "attack such as pgd to the config)"
)


def _robust(samples: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: correct when clean and when attacked (robust accuracy's numerator)."""
    return (samples["clean_pred"] == samples["label"]) & (samples["adv_pred"] == samples["label"])


def worst_case(
    store: ResultsStore, entries: dict[str, AttackInfo] | None = None
) -> list[dict[str, Any]]:
    """Per model and eps: robust accuracy against all attacks at once.

    A sample counts as robust only if it is classified correctly when clean and under
    every attack at that eps (per sample, not the minimum of the per-attack accuracies).

    Args:
        store: the run's store.
        entries: attack label -> stored attack info, to mark a worst case of adaptive
            attacks alone (see the module docstring); None marks nothing.

    Returns:
        rows {"model", "eps", "accuracy", "attacks": [labels], "n", "notes": [...]} sorted
        by model, eps.
    """
    groups: dict[tuple[str, float], list[JobKey]] = defaultdict(list)
    for key in store.finished():
        groups[(key.model, key.eps)].append(key)
    rows = []
    for (model, eps), keys in sorted(groups.items()):
        robust = np.logical_and.reduce([_robust(store.samples(key)) for key in keys])
        kinds = {entries[k.attack].kind for k in keys if k.attack in entries} if entries else set()
        rows.append(
            {
                "model": model,
                "eps": eps,
                "accuracy": float(np.mean(robust)),
                "attacks": sorted(k.attack for k in keys),
                "n": len(robust),
                "notes": [ONLY_ADAPTIVE_NOTE] if eps > 0 and kinds == {"adaptive"} else [],
            }
        )
    return rows


def row_notes(metrics: dict[str, Any], entry: AttackInfo | None) -> list[str]:
    """What a reader must know to read a result row: an adaptive attack's accuracy is not
    a bound; how many saturated samples the margin fallback re-attacked (runner)."""
    notes = []
    if entry is not None and entry.kind == "adaptive":
        notes.append(ADAPTIVE_NOTE)
    covered = metrics.get("margin_fallback", 0)
    if covered:
        fooled = int(metrics.get("margin_fallback_fooled", 0))
        notes.append(
            f"margin fallback: {int(covered)} sample(s) the attack left unfooled had an "
            f"all-zero cross-entropy gradient (a saturated softmax, or no gradient at all) "
            f"and were re-attacked with the margin loss; {fooled} of them fooled"
        )
    return notes


def run_notes(results: list[dict[str, Any]], worst: list[dict[str, Any]]) -> list[str]:
    """The rows' notes once each, for the report's headline and the console: one line per
    adaptive attack, one per (model, attack) that needed the margin fallback."""
    adaptive = sorted({r["attack"] for r in results if r.get("kind") == "adaptive"})
    notes = [f"{attack}: {ADAPTIVE_NOTE}" for attack in adaptive]
    fallback: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results:
        if r.get("margin_fallback"):
            fallback[(r["model"], r["attack"])].append(
                f"{int(r['margin_fallback_fooled'])} of {int(r['margin_fallback'])} "
                f"at eps {r['eps']:g}"
            )
    for (model, attack), counts in sorted(fallback.items()):
        notes.append(
            f"{model} / {attack}: unfooled samples with an all-zero cross-entropy gradient "
            f"(a saturated softmax, or no gradient at all) were re-attacked with the margin "
            f"loss (fooled: {', '.join(counts)})"
        )
    notes += [
        f"{w['model']}: worst case at eps {w['eps']:g}: {note}"
        for w in worst
        for note in w["notes"]
    ]
    return notes


def probe_comparisons(store: ResultsStore, entries: dict[str, AttackInfo]) -> list[ProbeComparison]:
    """Each model's gradient-free probe (stored with its diagnostics) against the gradient
    attacks' stored per-sample results at the probe's eps, on the probe's samples."""
    finished = store.finished()
    out = []
    for model, values in sorted(store.diagnostics().items()):
        probe = values.get("probe") or {}
        for eps, robust in zip(probe.get("eps", []), probe.get("robust", []), strict=True):
            n = len(robust)
            gradient = {
                key.attack: _robust(store.samples(key))[:n]
                for key in sorted(finished)
                if key.model == model
                and key.eps == eps
                and key.attack in entries
                and entries[key.attack].kind == "gradient"
            }
            if gradient:
                out.append(
                    compare_probe(
                        model, eps, np.asarray(robust, bool), gradient, probe.get("n_queries", 0)
                    )
                )
    return out


def summarize(store: ResultsStore) -> dict[str, Any]:
    """The summary of a run: run facts, one row per job (with its attack's kind and the
    notes a reader needs), the worst case, those notes once each (`run_notes`), the
    per-model diagnostics, the gradient-free probe against the gradient attacks, figures,
    and the warnings of the gradient-masking checks."""
    meta = store.meta()
    config = meta.get("config", {})
    run = {
        "name": config.get("run", {}).get("name"),
        "dataset": config.get("run", {}).get("dataset"),
        "n_examples": meta.get("n_examples"),
        "seed": config.get("run", {}).get("seed"),
        "norm": config.get("sweep", {}).get("norm"),
        "digest": meta.get("digest"),
        "complete": meta.get("complete", False),
        "config_source": meta.get("config_source"),
        "config": config,
        "environment": meta.get("environment", {}),
    }
    entries = attack_infos(meta)
    results = [
        {
            "model": r.key.model,
            "attack": r.key.attack,
            "eps": r.key.eps,
            **r.metrics,
            "seconds": r.seconds,
            "kind": entries[r.key.attack].kind if r.key.attack in entries else None,
            "notes": row_notes(dict(r.metrics), entries.get(r.key.attack)),
        }
        for r in store.jobs()
    ]
    probes = probe_comparisons(store, entries)
    worst = worst_case(store, entries)
    return {
        "run": run,
        "results": results,
        "worst_case": worst,
        "notes": run_notes(results, worst),
        "diagnostics": store.diagnostics(),
        "probes": [{**dataclasses.asdict(p), "attacks": list(p.attacks)} for p in probes],
        "figures": [],  # filled by reports.build_report, which draws them
        "warnings": masking_warnings(results, entries, store.diagnostics(), probes),
    }


def _strict(value: Any) -> Any:
    """NaN and infinities become null: summary.json must be valid JSON for every reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def write_summary(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write a summary to ``path`` as strict JSON (NaN -> null); returns what was written."""
    summary = _strict(summary)
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(summary, indent=2, allow_nan=False), encoding="utf-8")
    tmp.replace(path)
    return summary
