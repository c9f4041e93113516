"""A run's summary: the numbers of ``summary.json``, derived from the store alone.

Rows of a "detection-evasion" (adaptive) attack carry `ADAPTIVE_NOTE`: its robust accuracy
is not a bound. They stay in the worst case: every sample such an attack fools is a
misclassified input inside the eps-ball, so it can only lower the per-sample worst case,
and rightly; where it fails it submits the clean input, whose verdict (correct when clean)
every row already requires, so it cannot raise the worst case either. A worst case made of
adaptive attacks alone is no robustness bound, and its row says so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_local.results.masking import (
    ProbeComparison,
    compare_probe,
    masking_warnings,
)
from robustbench_local.results.records import (
    ResultRow,
    RunInfo,
    Summary,
    SummaryFormatError,
    WorstCaseRow,
)
from robustbench_local.results.schema import ADAPTIVE_NOTE, AttackInfo, attack_infos
from robustbench_local.results.store import JobKey, ResultsStore

__all__ = [
    "probe_comparisons",
    "read_summary",
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
) -> list[WorstCaseRow]:
    """Per model and eps: robust accuracy against all attacks at once.

    A sample counts as robust only if it is classified correctly when clean and under
    every attack at that eps (per sample, not the minimum of the per-attack accuracies).

    Args:
        store: the run's store.
        entries: attack label -> stored attack info, to mark a worst case of adaptive
            attacks alone (see the module docstring); None marks nothing.

    Returns:
        one row per (model, eps), sorted by model, eps.
    """
    groups: dict[tuple[str, float], list[JobKey]] = defaultdict(list)
    for key in store.finished():
        groups[(key.model, key.eps)].append(key)
    rows = []
    for (model, eps), keys in sorted(groups.items()):
        robust = np.logical_and.reduce([_robust(store.samples(key)) for key in keys])
        kinds = {entries[k.attack].kind for k in keys if k.attack in entries} if entries else set()
        rows.append(
            WorstCaseRow(
                model=model,
                eps=eps,
                accuracy=float(np.mean(robust)),
                attacks=tuple(sorted(k.attack for k in keys)),
                n=len(robust),
                notes=(ONLY_ADAPTIVE_NOTE,) if eps > 0 and kinds == {"adaptive"} else (),
            )
        )
    return rows


def row_notes(metrics: Mapping[str, float], entry: AttackInfo | None) -> list[str]:
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


def run_notes(results: Sequence[ResultRow], worst: Sequence[WorstCaseRow]) -> list[str]:
    """The rows' notes once each, for the report's headline and the console: one line per
    adaptive attack, one per (model, attack) that needed the margin fallback."""
    adaptive = sorted({r.attack for r in results if r.kind == "adaptive"})
    notes = [f"{attack}: {ADAPTIVE_NOTE}" for attack in adaptive]
    fallback: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results:
        covered = r.metrics.get("margin_fallback", 0)
        if covered:
            fallback[(r.model, r.attack)].append(
                f"{int(r.metric('margin_fallback_fooled'))} of {int(covered)} at eps {r.eps:g}"
            )
    for (model, attack), counts in sorted(fallback.items()):
        notes.append(
            f"{model} / {attack}: unfooled samples with an all-zero cross-entropy gradient "
            f"(a saturated softmax, or no gradient at all) were re-attacked with the margin "
            f"loss (fooled: {', '.join(counts)})"
        )
    notes += [f"{w.model}: worst case at eps {w.eps:g}: {note}" for w in worst for note in w.notes]
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


def summarize(store: ResultsStore) -> Summary:
    """The summary of a run: run facts, one row per job (with its attack's kind and the
    notes a reader needs), the worst case, those notes once each (`run_notes`), the
    per-model diagnostics, the gradient-free probe against the gradient attacks, and the
    warnings of the gradient-masking checks. Figures are added by the report."""
    meta = store.meta()
    config = meta.get("config", {})
    run = RunInfo(
        name=config.get("run", {}).get("name"),
        dataset=config.get("run", {}).get("dataset"),
        n_examples=meta.get("n_examples"),
        seed=config.get("run", {}).get("seed"),
        norm=config.get("sweep", {}).get("norm"),
        digest=meta.get("digest"),
        complete=bool(meta.get("complete", False)),
        config_source=meta.get("config_source"),
        config=config,
        environment=meta.get("environment", {}),
    )
    entries = attack_infos(meta)
    results = [
        ResultRow(
            model=r.key.model,
            attack=r.key.attack,
            eps=r.key.eps,
            metrics=dict(r.metrics),
            seconds=r.seconds,
            kind=entries[r.key.attack].kind if r.key.attack in entries else None,
            notes=tuple(row_notes(r.metrics, entries.get(r.key.attack))),
        )
        for r in store.jobs()
    ]
    probes = probe_comparisons(store, entries)
    worst = worst_case(store, entries)
    diagnostics = store.diagnostics()
    return Summary(
        run=run,
        results=tuple(results),
        worst_case=tuple(worst),
        notes=tuple(run_notes(results, worst)),
        diagnostics=diagnostics,
        probes=tuple(probes),
        warnings=tuple(masking_warnings(results, entries, diagnostics, probes)),
    )


def write_summary(summary: Summary, path: Path) -> dict[str, Any]:
    """Write a summary to ``path`` as strict JSON (NaN -> null); returns what was written."""
    written = summary.to_json_dict()
    tmp = path.with_suffix(".json.partial")
    try:
        tmp.write_text(json.dumps(written, indent=2, allow_nan=False), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk must not leave the partial file behind
    return written


def read_summary(path: Path) -> Summary:
    """Read a ``summary.json``.

    Raises:
        OSError: the file cannot be read.
        SummaryFormatError: not JSON, a newer schema, or the wrong shape (the message
            names the key; the caller names the file).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Summary.from_dict(data)
    except json.JSONDecodeError as error:
        raise SummaryFormatError(f"not valid JSON ({error})") from None
