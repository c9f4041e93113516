"""The evaluation protocol: what one (model, attack, eps) job measures.

Per sample: the clean and the adversarial prediction, confidence, total / aleatoric /
epistemic uncertainty (nats), NLL and Brier score, and the perturbation size. Per job:
robust accuracy (clean errors count as not robust, the AutoAttack convention), the attack
success rate on the initially correct, calibration of the adversarial predictions, and
how well each score tells adversarial from clean inputs (AUROC / AUPR).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from robustbench_local.results.schema import DETECTION_SCORES, ECE_BINS, MIN_DETECTION_GROUP
from uncertainty import decompose, metrics, sample_probs
from uncertainty.metrics.scoring import brier_terms, nll_terms

__all__ = [
    "DETECTION_SCORES",
    "MIN_DETECTION_GROUP",
    "Predictions",
    "detection_metrics",
    "job_metrics",
    "matched_noise",
    "predict",
    "sample_columns",
    "separation",
    "suspicion",
]


@dataclass(frozen=True)
class Predictions:
    """A model's view of a batch, per sample (each (B,), numpy, float64 or int64)."""

    pred: np.ndarray
    confidence: np.ndarray
    total: np.ndarray
    aleatoric: np.ndarray
    epistemic: np.ndarray
    nll: np.ndarray
    brier: np.ndarray

    @staticmethod
    def concat(parts: list[Predictions]) -> Predictions:
        fields = Predictions.__dataclass_fields__
        return Predictions(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Predictions, Tensor]:
    """Evaluate a model on one batch.

    Args:
        model: a classifier, DeepEnsemble or MCDropout (anything `sample_probs` accepts).
        x: (B, ...) inputs.
        y: (B,) labels.

    Returns:
        The per-sample `Predictions`, and the probability samples (S, B, K) for streaming
        metrics.
    """
    probs = sample_probs(model, x).double()
    mean = probs.mean(dim=0)
    parts = decompose(probs)
    confidence, pred = mean.max(dim=1)
    y = y.to(mean.device)

    def cpu(t: Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    return Predictions(
        pred=cpu(pred).astype(np.int64),
        confidence=cpu(confidence),
        total=cpu(parts.total),
        aleatoric=cpu(parts.aleatoric),
        epistemic=cpu(parts.epistemic),
        nll=cpu(nll_terms(mean, y)),
        brier=cpu(brier_terms(mean, y)),
    ), probs


def sample_columns(
    y: np.ndarray,
    clean: Predictions,
    adv: Predictions,
    noise: Predictions,
    linf: np.ndarray,
    l2: np.ndarray,
) -> dict[str, np.ndarray]:
    """The store's per-sample columns (see `store.SAMPLE_COLUMNS`), each (N,)."""
    columns: dict[str, np.ndarray] = {"idx": np.arange(len(y)), "label": y}
    for prefix, preds in (("clean", clean), ("adv", adv), ("noise", noise)):
        for name in Predictions.__dataclass_fields__:
            columns[f"{prefix}_{name}"] = getattr(preds, name)
    columns["linf"], columns["l2"] = linf, l2
    return columns


def matched_noise(
    x: Tensor,
    x_adv: Tensor,
    norm: str,
    bounds: tuple[float, float],
    generator: torch.Generator,
) -> Tensor:
    """Clean inputs plus random noise as large as each sample's adversarial perturbation.

    linf: random signs times the perturbation's linf size (a random corner of its ball);
    l2: a random Gaussian direction scaled to the perturbation's l2 size. Clipped to the
    bounds, as the attack's own inputs are.

    Args:
        x: clean inputs (B, ...); x_adv: attacked inputs (B, ...).
        norm: "linf" or "l2"; bounds: the valid input range.
        generator: source of the noise (a CPU generator; draws move to x's device).

    Returns:
        (B, ...) noisy inputs.
    """
    delta = (x_adv - x).flatten(1)
    if norm == "linf":
        size = delta.abs().amax(dim=1)
        draw = torch.randint(0, 2, x.shape, generator=generator).to(x) * 2 - 1
    else:
        size = delta.norm(dim=1)
        draw = torch.randn(x.shape, generator=generator).to(x)
        draw = draw / draw.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
    return (x + draw * size.view(-1, *[1] * (x.dim() - 1))).clamp(*bounds)


def suspicion(values: np.ndarray, score: str) -> np.ndarray:
    """A score's values oriented so that higher = more suspicious.

    Args:
        values: (N,) stored values of ``score`` (one of DETECTION_SCORES).
        score: the score's name.

    Returns:
        (N,) values; confidence negated, the uncertainties unchanged.
    """
    # Low confidence is what should flag an input, so it enters negated.
    return -values if score == "confidence" else values


# Each detection measure, for a score whose higher values should mean "positive".
_MEASURES = {"auroc": metrics.auroc, "aupr": metrics.aupr, "fpr95": metrics.fpr_at_95_tpr}


def separation(
    negative: Mapping[str, np.ndarray],
    positive: Mapping[str, np.ndarray],
    kinds: Sequence[str] = ("auroc", "aupr"),
    suffix: str = "",
) -> dict[str, float]:
    """How well each score in DETECTION_SCORES tells ``positive`` inputs from ``negative``
    ones (the reference, usually clean inputs); the groups need not be paired.

    Args:
        negative: score name -> (N,) values as stored (confidence not negated).
        positive: score name -> (M,) values as stored.
        kinds: measures, any of "auroc", "aupr" (positive = the positive group) and
            "fpr95" (the share of negatives flagged at the threshold that flags 95% of
            the positives).
        suffix: appended to every key.

    Returns:
        "<kind>_<score><suffix>" -> value; all NaN when either group has fewer than
        MIN_DETECTION_GROUP inputs.
    """
    unknown = [kind for kind in kinds if kind not in _MEASURES]
    if unknown:
        raise ValueError(f"kinds must be among {sorted(_MEASURES)}; got {unknown}")
    n_negative = len(negative[DETECTION_SCORES[0]])
    n_positive = len(positive[DETECTION_SCORES[0]])
    if min(n_negative, n_positive) < MIN_DETECTION_GROUP:  # too few: undefined, not 0.5
        return {f"{kind}_{score}{suffix}": math.nan for score in DETECTION_SCORES for kind in kinds}
    is_positive = torch.cat(
        [torch.zeros(n_negative, dtype=torch.bool), torch.ones(n_positive, dtype=torch.bool)]
    )
    out = {}
    for score in DETECTION_SCORES:
        both = np.concatenate(
            [suspicion(negative[score], score), suspicion(positive[score], score)]
        )
        scores = torch.from_numpy(np.ascontiguousarray(both, dtype=np.float64))
        for kind in kinds:
            out[f"{kind}_{score}{suffix}"] = _MEASURES[kind](scores, is_positive)
    return out


def _separation(
    samples: Mapping[str, np.ndarray], positive: str, keep: np.ndarray, suffix: str
) -> dict[str, float]:
    """AUROC / AUPR of each score for ``positive`` inputs against their clean originals."""
    return separation(
        {score: samples[f"clean_{score}"][keep] for score in DETECTION_SCORES},
        {score: samples[f"{positive}_{score}"][keep] for score in DETECTION_SCORES},
        suffix=suffix,
    )


def detection_metrics(samples: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The detection protocol of Smith and Gal (2018), for each score in DETECTION_SCORES.

    Args:
        samples: per-sample columns as stored.

    Returns:
        auroc_/aupr_<score>: adversarial inputs against their clean originals, all of them;
        auroc_/aupr_<score>_successful: only where the attack succeeded (clean right,
        attacked wrong); auroc_/aupr_<score>_noise: the control, clean inputs plus random
        noise of the same norm against the clean ones. A score that separates noise as
        well as attacks detects perturbation, not adversarial intent. n_successful: the
        size of the successful group. NaN where a group has fewer than
        MIN_DETECTION_GROUP inputs.
    """
    label = samples["label"]
    everyone = np.ones(len(label), dtype=bool)
    successful = (samples["clean_pred"] == label) & (samples["adv_pred"] != label)
    return {
        "n_successful": float(successful.sum()),
        **_separation(samples, "adv", everyone, ""),
        **_separation(samples, "adv", successful, "_successful"),
        **_separation(samples, "noise", everyone, "_noise"),
    }


def job_metrics(samples: Mapping[str, np.ndarray], n_bins: int = ECE_BINS) -> dict[str, float]:
    """A job's aggregate numbers, all computed from its per-sample columns.

    Args:
        samples: per-sample columns as stored (see `sample_columns`).
        n_bins: calibration bins for ECE.

    Returns:
        accuracy (robust accuracy over all N), clean_accuracy, attack_success_rate (among
        the initially correct), mean_confidence, mean_total, mean_aleatoric,
        mean_epistemic (all on the adversarial inputs), ece, nll, brier, aurc (adversarial
        predictions), clean_ece, noise_accuracy and noise_mean_epistemic (the control
        inputs), and the detection AUROC / AUPR of each score (see `detection_metrics`).
    """
    label = samples["label"]
    clean_ok = samples["clean_pred"] == label
    adv_ok = samples["adv_pred"] == label
    robust = clean_ok & adv_ok
    out = {
        "n": float(len(label)),
        "accuracy": float(robust.mean()),
        "clean_accuracy": float(clean_ok.mean()),
        "attack_success_rate": float((~adv_ok[clean_ok]).mean()) if clean_ok.any() else np.nan,
        "mean_confidence": float(samples["adv_confidence"].mean()),
        "clean_mean_confidence": float(samples["clean_confidence"].mean()),
        "mean_total": float(samples["adv_total"].mean()),
        "mean_aleatoric": float(samples["adv_aleatoric"].mean()),
        "mean_epistemic": float(samples["adv_epistemic"].mean()),
        "clean_mean_epistemic": float(samples["clean_epistemic"].mean()),
        "noise_accuracy": float((samples["noise_pred"] == label).mean()),
        "noise_mean_epistemic": float(samples["noise_epistemic"].mean()),
        "nll": float(samples["adv_nll"].mean()),
        "brier": float(samples["adv_brier"].mean()),
        "mean_linf": float(samples["linf"].mean()),
        "mean_l2": float(samples["l2"].mean()),
    }
    for prefix, ok, name in (("adv", adv_ok, "ece"), ("clean", clean_ok, "clean_ece")):
        confidence = torch.from_numpy(samples[f"{prefix}_confidence"])
        correct = torch.from_numpy(ok)
        out[name] = metrics.reliability_bins(confidence, correct, n_bins=n_bins).ece
    out["aurc"] = metrics.aurc(
        torch.from_numpy(samples["adv_confidence"]), torch.from_numpy(adv_ok)
    )
    out.update(detection_metrics(samples))
    return out
