"""What one distribution-shift job measures: a model on corrupted inputs or on an
out-of-distribution (OOD) set.

A corruption job (one corruption at one severity) is read like an attack job with a
natural instead of an adversarial perturbation: accuracy, calibration (ECE, NLL, Brier)
and mean uncertainty on the corrupted inputs, and how well each detection score tells the
corrupted inputs from their clean originals (AUROC; the question of Ovadia et al. 2019:
does the uncertainty grow when the data shifts?). An OOD job has no true classes: only
how well each score tells the OOD inputs from the clean test inputs (AUROC, AUPR, FPR at
95% TPR), as in Hendrycks and Gimpel (2017).

The runner calls `predict` (bench/protocol.py) on the shifted inputs, stores
`shift_sample_columns` with `ResultsStore.write_shift_job` and the numbers of
`corruption_metrics` or `ood_metrics` with them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from robustbench_local.bench.protocol import Predictions, separation
from robustbench_local.results.schema import DETECTION_SCORES, ECE_BINS, OOD_LABEL, SAMPLE_FIELDS
from uncertainty import metrics

__all__ = ["corruption_metrics", "ood_metrics", "shift_sample_columns"]

Columns = Mapping[str, np.ndarray]


def _columns(preds: Predictions | Columns, argument: str) -> dict[str, np.ndarray]:
    """Per-sample fields (SAMPLE_FIELDS, unprefixed) of Predictions or stored columns."""
    if isinstance(preds, Predictions):
        return {name: np.asarray(getattr(preds, name)) for name in SAMPLE_FIELDS}
    if not isinstance(preds, Mapping):
        raise TypeError(
            f"{argument} must be Predictions or a mapping of columns; got {type(preds).__name__}"
        )
    missing = [name for name in SAMPLE_FIELDS if name not in preds]
    if missing:
        raise ValueError(f"{argument} is missing columns {missing}")
    lengths = {len(preds[name]) for name in SAMPLE_FIELDS}
    if len(lengths) != 1:
        raise ValueError(f"{argument} has columns of different lengths {sorted(lengths)}")
    return {name: np.asarray(preds[name]) for name in SAMPLE_FIELDS}


def shift_sample_columns(y: np.ndarray, preds: Predictions) -> dict[str, np.ndarray]:
    """The store's per-sample columns of a shift job (`schema.SHIFT_SAMPLE_COLUMNS` plus
    "idx"), each (N,).

    Args:
        y: (N,) int labels; for an OOD set `schema.OOD_LABEL` (-1) for every sample.
        preds: the model on the shifted inputs (`protocol.predict`; for OOD inputs it needs
            some valid label, say zeros, whose nll and brier are discarded here).

    Returns:
        "idx" (0..N-1), "label" and the fields of `Predictions`; an OOD sample's nll and
        brier are NaN (it has no true class to score).
    """
    y = np.asarray(y)
    columns = _columns(preds, "preds")
    if y.ndim != 1 or len(y) != len(columns["pred"]):
        raise ValueError(
            f"y must be (N,) with N = {len(columns['pred'])} predictions; got shape {y.shape}"
        )
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < OOD_LABEL):
        raise ValueError(f"y must hold int labels >= 0, or {OOD_LABEL} for OOD inputs")
    ood = y == OOD_LABEL
    for name in ("nll", "brier"):
        columns[name] = np.where(ood, np.nan, columns[name].astype(np.float64))
    return {"idx": np.arange(len(y)), "label": y.astype(np.int64), **columns}


def corruption_metrics(
    shifted: Predictions | Columns,
    clean: Predictions | Columns,
    y: np.ndarray,
    n_bins: int = ECE_BINS,
) -> dict[str, float]:
    """A corruption job's numbers (`schema.SHIFT_METRICS`).

    Args:
        shifted: the model on the corrupted inputs: `Predictions`, or the columns of
            `shift_sample_columns` / `ResultsStore.shift_samples`, each (N,).
        clean: the model on the same N inputs uncorrupted, in the same order.
        y: (N,) labels.
        n_bins: calibration bins for ECE (the attack jobs' ECE uses the same).

    Returns:
        n; accuracy, ece, nll, brier, mean_confidence, mean_total, mean_aleatoric and
        mean_epistemic on the corrupted inputs; auroc_<score> of each detection score for
        the corrupted inputs (positive) against their clean originals (negative), low
        confidence counting as suspicious; NaN when N < MIN_DETECTION_GROUP.
    """
    shifted_columns = _columns(shifted, "shifted")
    clean_columns = _columns(clean, "clean")
    y = np.asarray(y)
    n = len(shifted_columns["pred"])
    if n == 0:
        raise ValueError("shifted holds no samples; a corruption job needs at least one")
    if len(clean_columns["pred"]) != n or y.shape != (n,):
        raise ValueError(
            f"shifted, clean and y must hold the same N samples; got {n}, "
            f"{len(clean_columns['pred'])} and y of shape {y.shape}"
        )
    if (y < 0).any():
        raise ValueError("y must hold true labels >= 0 (OOD inputs belong in ood_metrics)")
    correct = shifted_columns["pred"] == y
    confidence = shifted_columns["confidence"].astype(np.float64)
    out = {
        "n": float(n),
        "accuracy": float(correct.mean()),
        # The same binned ECE as an attack job's, so the two are comparable in one report.
        "ece": metrics.reliability_bins(
            torch.from_numpy(confidence), torch.from_numpy(correct), n_bins=n_bins
        ).ece,
        "nll": float(shifted_columns["nll"].mean()),
        "brier": float(shifted_columns["brier"].mean()),
        "mean_confidence": float(confidence.mean()),
        **{
            f"mean_{u}": float(shifted_columns[u].mean())
            for u in ("total", "aleatoric", "epistemic")
        },
    }
    out.update(
        separation(
            {s: clean_columns[s] for s in DETECTION_SCORES},
            {s: shifted_columns[s] for s in DETECTION_SCORES},
            kinds=("auroc",),
        )
    )
    return out


def ood_metrics(ood: Predictions | Columns, clean: Predictions | Columns) -> dict[str, float]:
    """An OOD job's numbers (`schema.OOD_METRICS`): does each score flag the OOD inputs?

    Args:
        ood: the model on the M OOD inputs (`Predictions` or stored columns, each (M,)).
        clean: the model on the N clean test inputs (the in-distribution reference).

    Returns:
        n (= M); auroc_, aupr_ (OOD = positive) and fpr95_<score> (the share of clean
        inputs flagged at the threshold that flags 95% of the OOD inputs; lower is better)
        for each detection score, low confidence counting as suspicious; NaN when either
        group has fewer than MIN_DETECTION_GROUP inputs.
    """
    ood_columns = _columns(ood, "ood")
    clean_columns = _columns(clean, "clean")
    return {
        "n": float(len(ood_columns["pred"])),
        **separation(
            {s: clean_columns[s] for s in DETECTION_SCORES},
            {s: ood_columns[s] for s in DETECTION_SCORES},
            kinds=("auroc", "aupr", "fpr95"),
        ),
    }
