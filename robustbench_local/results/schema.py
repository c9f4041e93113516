"""The results schema: the one place that names what a run stores and what readers read.

The stored per-sample columns, the detection scores and their smallest group, the bin
count shared by the protocol's ECE and the report's reliability diagram, the meta keys of
the store, and what a reader needs to know of each attack (its kind) without importing
the benchmark that ran it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ADAPTIVE_NOTE",
    "DETECTION_METRICS",
    "DETECTION_SCORES",
    "ECE_BINS",
    "INPUT_KINDS",
    "KINDS",
    "META_ATTACKS",
    "META_CONFIG",
    "META_DIGEST",
    "METRICS",
    "MIN_DETECTION_GROUP",
    "SAMPLE_COLUMNS",
    "SAMPLE_FIELDS",
    "AttackInfo",
    "AttackKind",
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
# The per-job metrics a summary row may hold (the protocol's `job_metrics` and the
# runner's margin-fallback counts); readers ask for them by these names.
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
)
# Calibration bins of the stored ECE and of the reliability diagram: the two must agree.
ECE_BINS = 15

# Meta keys of the store that more than one package reads.
META_CONFIG = "config"
META_DIGEST = "digest"
META_ATTACKS = "attacks"  # label -> {"name", "kind", "iterative"}, written by the runner

AttackKind = Literal["gradient", "gradient-free", "adaptive"]
KINDS: tuple[AttackKind, ...] = ("gradient", "gradient-free", "adaptive")
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
        kind: "gradient", "gradient-free" or "adaptive" (a detection-evasion attack, whose
            robust accuracy is no bound).
        iterative: False for a single gradient step (fgsm).
    """

    name: str
    kind: AttackKind
    iterative: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "iterative": self.iterative}


def attack_infos(meta: Mapping[str, Any]) -> dict[str, AttackInfo]:
    """Attack label -> `AttackInfo`, from a store's meta (empty for a store without it)."""
    stored = meta.get(META_ATTACKS) or {}
    return {
        label: AttackInfo(info["name"], info["kind"], bool(info.get("iterative", True)))
        for label, info in stored.items()
    }
