"""The shift protocol: known answers, scikit-learn as the reference, stored columns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from robustbench_local.bench.protocol import Predictions, job_metrics, predict, separation
from robustbench_local.bench.shift_protocol import (
    corruption_metrics,
    ood_metrics,
    shift_sample_columns,
)
from robustbench_local.results.schema import (
    DETECTION_SCORES,
    MIN_DETECTION_GROUP,
    OOD_LABEL,
    OOD_METRICS,
    SHIFT_METRICS,
    SHIFT_SAMPLE_COLUMNS,
)


def _preds(rng: np.random.Generator, n: int, shift: float = 0.0, k: int = 10) -> Predictions:
    """Random per-sample numbers; ``shift`` lowers confidence and raises uncertainty."""
    confidence = np.clip(rng.beta(8, 2, n) - shift, 0.11, 1.0)
    epistemic = rng.gamma(2.0, 0.05, n) + shift
    total = epistemic + rng.gamma(2.0, 0.2, n)
    return Predictions(
        pred=rng.integers(0, k, n),
        confidence=confidence,
        total=total,
        aleatoric=total - epistemic,
        epistemic=epistemic,
        nll=rng.gamma(2.0, 0.3, n),
        brier=rng.random(n),
    )


def _fpr95_sklearn(y_true: np.ndarray, scores: np.ndarray) -> float:
    """FPR at the first ROC point whose TPR reaches 95% (scikit-learn's curve)."""
    fpr, tpr, _ = roc_curve(y_true, scores, drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= 0.95)])


def _suspicious(p: Predictions, score: str) -> np.ndarray:
    values = getattr(p, score)
    return -values if score == "confidence" else values


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ood_metrics_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clean, ood = _preds(rng, 150), _preds(rng, 90, shift=0.15)
    result = ood_metrics(ood, clean)
    assert set(result) == set(OOD_METRICS) and result["n"] == 90
    y_true = np.r_[np.zeros(150), np.ones(90)]
    for score in DETECTION_SCORES:
        scores = np.r_[_suspicious(clean, score), _suspicious(ood, score)]
        assert result[f"auroc_{score}"] == pytest.approx(roc_auc_score(y_true, scores), abs=1e-6)
        assert result[f"aupr_{score}"] == pytest.approx(
            average_precision_score(y_true, scores), abs=1e-6
        )
        assert result[f"fpr95_{score}"] == pytest.approx(_fpr95_sklearn(y_true, scores), abs=1e-6)


def test_perfectly_separated_ood_inputs_give_auroc_one_and_fpr95_zero() -> None:
    rng = np.random.default_rng(0)
    clean = _preds(rng, 50)
    ood = Predictions(
        **{
            **{f: getattr(_preds(rng, 30), f) for f in Predictions.__dataclass_fields__},
            "confidence": np.full(30, 0.05),  # below every clean confidence
            "total": np.full(30, 100.0),
            "epistemic": np.full(30, 100.0),
        }
    )
    result = ood_metrics(ood, clean)
    for score in DETECTION_SCORES:
        assert result[f"auroc_{score}"] == pytest.approx(1.0)
        assert result[f"aupr_{score}"] == pytest.approx(1.0)
        assert result[f"fpr95_{score}"] == pytest.approx(0.0)
    # The reverse: OOD inputs look *more* certain than every clean one.
    flipped = ood_metrics(clean, ood)
    assert flipped["auroc_epistemic"] == pytest.approx(0.0)
    assert flipped["fpr95_epistemic"] == pytest.approx(1.0)


def test_a_deterministic_models_zero_epistemic_is_chance_not_a_detector() -> None:
    rng = np.random.default_rng(3)
    clean, ood = _preds(rng, 40), _preds(rng, 40, shift=0.3)
    for p in (clean, ood):
        p.epistemic[:] = 0.0
    result = ood_metrics(ood, clean)
    assert result["auroc_epistemic"] == pytest.approx(0.5)
    assert result["fpr95_epistemic"] == pytest.approx(1.0)  # flagging any OOD flags all clean


@pytest.mark.parametrize("n_ood", [0, 1, MIN_DETECTION_GROUP - 1])
def test_too_small_a_group_gives_nan(n_ood: int) -> None:
    rng = np.random.default_rng(0)
    result = ood_metrics(_preds(rng, n_ood), _preds(rng, 100))
    assert result["n"] == n_ood
    assert all(math.isnan(v) for k, v in result.items() if k != "n")
    # A corruption job smaller than the smallest group: its AUROCs are undefined too.
    clean, shifted = _preds(rng, MIN_DETECTION_GROUP - 1), _preds(rng, MIN_DETECTION_GROUP - 1)
    small = corruption_metrics(shifted, clean, np.zeros(MIN_DETECTION_GROUP - 1, np.int64))
    assert all(math.isnan(small[f"auroc_{s}"]) for s in DETECTION_SCORES)
    assert not math.isnan(small["accuracy"])


def test_corruption_metrics_known_answers() -> None:
    n = 40
    y = np.arange(n) % 10
    rng = np.random.default_rng(0)
    clean = _preds(rng, n)
    clean.pred[:] = y
    clean.confidence[:] = 0.9
    clean.epistemic[:] = 0.0
    clean.total[:] = 0.1
    shifted = _preds(rng, n)
    shifted.pred[:] = np.where(np.arange(n) < 10, (y + 1) % 10, y)  # a quarter wrong
    shifted.confidence[:] = 0.75  # lower than every clean one, as confident as it is right
    shifted.epistemic[:] = 0.2
    shifted.total[:] = 0.5
    columns = shift_sample_columns(y, shifted)
    result = corruption_metrics(columns, clean, y)
    assert set(result) == set(SHIFT_METRICS)
    assert result["n"] == n and result["accuracy"] == pytest.approx(0.75)
    assert result["ece"] == pytest.approx(0.0)  # 75% confident, 75% right, in one bin
    assert result["mean_confidence"] == pytest.approx(0.75)
    assert result["mean_epistemic"] == pytest.approx(0.2)
    assert result["nll"] == pytest.approx(shifted.nll.mean())
    assert result["brier"] == pytest.approx(shifted.brier.mean())
    for score in DETECTION_SCORES:  # every corrupted input more suspicious than every clean
        assert result[f"auroc_{score}"] == pytest.approx(1.0)
    # Predictions and stored columns give the same numbers.
    assert corruption_metrics(shifted, clean, y) == result


def test_corruption_ece_is_the_attack_jobs_ece() -> None:
    """A corruption job's ECE is computed as an attack job's: the report compares them."""
    rng = np.random.default_rng(5)
    n = 200
    y = rng.integers(0, 10, n)
    clean, shifted = _preds(rng, n), _preds(rng, n, shift=0.2)
    samples = {"label": y, "linf": np.zeros(n), "l2": np.zeros(n)}
    for prefix, p in (("clean", clean), ("adv", shifted), ("noise", clean)):
        for field in Predictions.__dataclass_fields__:
            samples[f"{prefix}_{field}"] = getattr(p, field)
    attack = job_metrics(samples)
    shift = corruption_metrics(shifted, clean, y)
    for name in ("ece", "nll", "brier", "mean_confidence", "mean_epistemic", "auroc_total"):
        assert shift[name] == pytest.approx(attack[name]), name
    assert shift["accuracy"] == pytest.approx(np.mean(shifted.pred == y))


def test_the_stored_columns_of_an_ood_set_have_no_label_nll_or_brier() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)).double()
    x = torch.rand(12, 1, 2, 2, dtype=torch.float64)
    preds, _ = predict(model, x, torch.zeros(12, dtype=torch.long))
    columns = shift_sample_columns(np.full(12, OOD_LABEL), preds)
    assert set(columns) == {"idx", *SHIFT_SAMPLE_COLUMNS}
    assert (columns["label"] == OOD_LABEL).all() and np.isnan(columns["nll"]).all()
    assert np.isnan(columns["brier"]).all()
    np.testing.assert_array_equal(columns["confidence"], preds.confidence)
    np.testing.assert_array_equal(columns["idx"], np.arange(12))
    # The same columns with their true labels keep nll and brier.
    labelled = shift_sample_columns(np.ones(12, np.int64), preds)
    np.testing.assert_array_equal(labelled["nll"], preds.nll)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: shift_sample_columns(np.zeros(3, np.int64), p), r"y must be \(N,\)"),
        (lambda p: shift_sample_columns(np.full(20, -2), p), "int labels >= 0, or -1"),
        (lambda p: shift_sample_columns(np.zeros(20), p), "int labels"),
        (lambda p: corruption_metrics(p, p, np.zeros(19, np.int64)), "same N samples"),
        (lambda p: corruption_metrics(p, p, np.full(20, -1)), "OOD inputs belong"),
        (lambda p: corruption_metrics({"pred": p.pred}, p, p.pred), "missing columns"),
        (lambda p: ood_metrics([1, 2], p), "must be Predictions or a mapping"),
    ],
)
def test_misuse_names_the_argument(call, message: str) -> None:
    preds = _preds(np.random.default_rng(0), 20)
    with pytest.raises((ValueError, TypeError), match=message):
        call(preds)


def test_the_separation_rejects_an_unknown_measure() -> None:
    columns = {s: np.zeros(20) for s in DETECTION_SCORES}
    with pytest.raises(ValueError, match="kinds must be among"):
        separation(columns, columns, kinds=("auc",))
