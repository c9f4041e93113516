"""The results schema: the one place that names what a run stores and what readers read.

The stored per-sample columns, the detection scores and their smallest group, the bin
count shared by the protocol's ECE and the report's reliability diagram, the meta keys of
the store, and what a reader needs to know of each attack (its kind) without importing
the benchmark that ran it; for distribution-shift jobs (corruptions and out-of-distribution
sets), their per-sample columns and metric names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ADAPTIVE_NOTE",
    "DETECTION_METRICS",
    "DETECTION_SCORES",
    "ECE_BINS",
    "EXPLAIN_METRICS",
    "INPUT_KINDS",
    "KINDS",
    "META_ATTACKS",
    "META_CLASS_NAMES",
    "META_CONFIG",
    "META_DIGEST",
    "METRICS",
    "MIN_DETECTION_GROUP",
    "OOD_LABEL",
    "OOD_METRICS",
    "SAMPLE_COLUMNS",
    "SAMPLE_FIELDS",
    "SHIFT_KINDS",
    "SHIFT_METRICS",
    "SHIFT_SAMPLE_COLUMNS",
    "TRANSFORM_METRICS",
    "AttackInfo",
    "AttackKind",
    "ShiftKind",
    "attack_infos",
]

# Per-sample columns, each stored for three inputs: the clean one, the attacked one, and the
# clean one plus random noise of the attack's norm (the detection protocol's control).
SAMPLE_FIELDS = ("pred", "confidence", "total", "aleatoric", "epistemic", "nll", "brier")
INPUT_KINDS = ("clean", "adv", "noise")
SAMPLE_COLUMNS = (
    "label",
    *(f"{kind}_{f}" for kind in INPUT_KINDS for f in SAMPLE_FIELDS),
    "linf",
    "l2",
)

# Scores that should flag an adversarial input; higher = more suspicious.
DETECTION_SCORES = ("confidence", "total", "epistemic")
# Fewest adversarial inputs a detection AUROC / AUPR is reported on. With one successful
# attack out of hundreds the AUROC is 0 or 1 by the luck of one sample; NaN says "too few
# to tell" instead of printing a number a reviewer would read as a finding.
MIN_DETECTION_GROUP = 10
# Explanations ([explain], bench/explain_jobs.py), on a fixed subset of the evaluated images:
# the mean Spearman correlation of the clean and the attacked (or noisy) attribution maps of
# the true class, and the mean share of the penultimate-layer shift that lies in the span of
# the model's concept directions. Absent when explanations are off.
EXPLAIN_METRICS = (
    "attribution_similarity",
    "attribution_similarity_noise",
    "concept_shift",
    "concept_shift_noise",
)
# EOT attacks (pgd-eot, bench/eot.py), among the correctly classified samples: the share
# whose adversarial example fools on at least the robust fraction of fresh random
# transformations, the same share for the clean input (the transformations alone), and the
# mean share of transformations the adversarial example fools on.
TRANSFORM_METRICS = (
    "transform_success_rate",
    "transform_clean_error_rate",
    "transform_fooled_mean",
)
# The per-job metrics a summary row may hold (the protocol's `job_metrics`, the runner's
# margin-fallback counts and the explanations); readers ask for them by these names.
DETECTION_METRICS = tuple(
    f"{kind}_{score}{group}"
    for group in ("", "_successful", "_noise")
    for score in DETECTION_SCORES
    for kind in ("auroc", "aupr")
)
METRICS = (
    "n",
    "accuracy",
    "clean_accuracy",
    "attack_success_rate",
    "mean_confidence",
    "clean_mean_confidence",
    "mean_total",
    "mean_aleatoric",
    "mean_epistemic",
    "clean_mean_epistemic",
    "noise_accuracy",
    "noise_mean_epistemic",
    "nll",
    "brier",
    "mean_linf",
    "mean_l2",
    "ece",
    "clean_ece",
    "aurc",
    "n_successful",
    *DETECTION_METRICS,
    "margin_fallback",
    "margin_fallback_fooled",
    *EXPLAIN_METRICS,
    *TRANSFORM_METRICS,
    # Per-class disparity, added by the summary from the per-sample columns (not the
    # protocol): the lowest robust accuracy of any class, and best minus worst class.
    "worst_class_accuracy",
    "class_accuracy_gap",
)
# Distribution-shift jobs: a model on corrupted test images (one corruption at one severity,
# 1..5) or on an out-of-distribution set (severity 0). One input per sample, so the fields
# carry no input prefix. OOD samples have no true class: their label is OOD_LABEL and their
# nll and brier are NaN.
ShiftKind = Literal["corruption", "ood"]
SHIFT_KINDS: tuple[ShiftKind, ...] = ("corruption", "ood")
SHIFT_SAMPLE_COLUMNS = ("label", *SAMPLE_FIELDS)
OOD_LABEL = -1
# A corruption job's metrics: on the corrupted inputs, and the AUROC of each detection score
# for the corrupted inputs against their clean originals (does uncertainty flag the shift?).
SHIFT_METRICS = (
    "n",
    "accuracy",
    "ece",
    "nll",
    "brier",
    "mean_confidence",
    "mean_total",
    "mean_aleatoric",
    "mean_epistemic",
    *(f"auroc_{score}" for score in DETECTION_SCORES),
)
# An OOD job's metrics: each score's AUROC, AUPR (OOD = positive) and FPR95 (the share of
# clean test inputs flagged at the threshold that flags 95% of the OOD inputs).
OOD_METRICS = (
    "n",
    *(f"{kind}_{score}" for kind in ("auroc", "aupr", "fpr95") for score in DETECTION_SCORES),
)

# Calibration bins of the stored ECE and of the reliability diagram: the two must agree.
ECE_BINS = 15

# Meta keys of the store that more than one package reads.
META_CONFIG = "config"
META_DIGEST = "digest"
META_ATTACKS = "attacks"  # label -> {"name", "kind", "iterative", "params"}, by the runner
# The dataset's K class names in label order, where it has them (written by the runner);
# without it readers name a class by its index.
META_CLASS_NAMES = "class_names"

# "eot": a gradient attack on the loss averaged over random input transformations (pgd-eot);
# its robust accuracy is a bound, but it trades strength on the plain input for examples
# that survive the transformations, so it is not held to the gradient attacks' checks.
AttackKind = Literal["gradient", "gradient-free", "adaptive", "eot"]
KINDS: tuple[AttackKind, ...] = ("gradient", "gradient-free", "adaptive", "eot")
# How rows of an "adaptive" attack are marked wherever they are shown (summary, report).
ADAPTIVE_NOTE = (
    "detection-evasion attack: robust accuracy is not a bound (where it cannot fool while "
    "staying undetected it submits the clean input); read its rows for detection, and "
    "robustness from the other attacks"
)


@dataclass(frozen=True)
class AttackInfo:
    """What a reader of results knows of an attack: its registry name and kind.

    Attributes:
        name: the registered attack (``rbl list attacks``).
        kind: "gradient", "gradient-free", "adaptive" (a detection-evasion attack, whose
            robust accuracy is no bound) or "eot" (over random transformations).
        iterative: False for a single gradient step (fgsm).
        params: the parameters it ran with, JSON-ready: the registry's defaults with the
            config's choices (before the runner's per-model choice of ``select``); empty in
            stores made before they were recorded.
    """

    name: str
    kind: AttackKind
    iterative: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "iterative": self.iterative,
            "params": dict(self.params),
        }


def attack_infos(meta: Mapping[str, Any]) -> dict[str, AttackInfo]:
    """Attack label -> `AttackInfo`, from a store's meta (empty for a store without it)."""
    stored = meta.get(META_ATTACKS) or {}
    return {
        label: AttackInfo(
            info["name"],
            info["kind"],
            bool(info.get("iterative", True)),
            dict(info.get("params") or {}),
        )
        for label, info in stored.items()
    }
