"""A run's summary: the numbers of ``summary.json``, derived from the store alone."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_local.checks import masking_warnings
from robustbench_local.store import JobKey, ResultsStore

__all__ = ["summarize", "worst_case", "write_summary"]


def worst_case(store: ResultsStore) -> list[dict[str, Any]]:
    """Per model and eps: robust accuracy against all attacks at once.

    A sample counts as robust only if it is classified correctly when clean and under
    every attack at that eps (per sample, not the minimum of the per-attack accuracies).

    Returns:
        rows {"model", "eps", "accuracy", "attacks": [labels], "n"} sorted by model, eps.
    """
    groups: dict[tuple[str, float], list[JobKey]] = defaultdict(list)
    for key in store.finished():
        groups[(key.model, key.eps)].append(key)
    rows = []
    for (model, eps), keys in sorted(groups.items()):
        per_attack = []
        for key in keys:
            s = store.samples(key)
            per_attack.append((s["clean_pred"] == s["label"]) & (s["adv_pred"] == s["label"]))
        robust = np.logical_and.reduce(per_attack)
        rows.append(
            {
                "model": model,
                "eps": eps,
                "accuracy": float(np.mean(robust)),
                "attacks": sorted(k.attack for k in keys),
                "n": len(robust),
            }
        )
    return rows


def summarize(store: ResultsStore) -> dict[str, Any]:
    """The summary of a run: run facts, one row per job, the worst case, the per-model
    diagnostics, figures, and the warnings of the gradient-masking checks."""
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
    results = [
        {
            "model": r.key.model,
            "attack": r.key.attack,
            "eps": r.key.eps,
            **r.metrics,
            "seconds": r.seconds,
        }
        for r in store.jobs()
    ]
    names = {a["label"]: a["name"] for a in config.get("attacks", [])}
    return {
        "run": run,
        "results": results,
        "worst_case": worst_case(store),
        "diagnostics": store.diagnostics(),
        "figures": [],  # filled by reports.build_report, which draws them
        "warnings": masking_warnings(results, names, store.diagnostics()),
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
