"""Stored fixture runs for the report tests, written with ``ResultsStore.write_job`` directly.

The per-sample numbers are synthetic but shaped like a real digits run: a standard model that
stays confident while the attack fools it, an adversarially trained one that holds up, and a
deep ensemble (named like a script tag, to test escaping) whose epistemic uncertainty grows
under attack. Each sample has one latent robustness per model, so a sample broken at a small
eps stays broken at a larger one and PGD breaks everything FGSM breaks. The aggregate metrics
come from ``protocol.job_metrics`` on those samples, as in a real run. The example images are
real 8x8 scikit-learn digits, so the gallery looks like the real thing.

With ``explain`` (the default) every job also stores explanations as a run with [explain]
does: attribution similarity and concept shift metrics (similarity 1 and no concept shift at
eps 0, falling and growing with eps, the noise control changing less), maps of the stored
examples (a smooth stroke-shaped clean map, the adversarial one blurred off it in proportion to
eps) and per model a concept record of 4 directions whose exemplars are real digits of one
class each.

With ``corruptions`` / ``ood`` a run also stores distribution-shift jobs: per corruption a
difficulty, so accuracy falls with severity; the deterministic models stay confident when
wrong (their ECE grows with severity) while the ensemble's confidence falls and its epistemic
uncertainty grows. Their metrics come from ``shift_protocol``, against each model's clean
predictions, as in a real run.
"""

from __future__ import annotations

import functools
import math
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_digits

from robustbench_local.bench.protocol import Predictions, job_metrics
from robustbench_local.bench.shift_protocol import (
    corruption_metrics,
    ood_metrics,
    shift_sample_columns,
)
from robustbench_local.results.records import Summary
from robustbench_local.results.schema import OOD_LABEL, SAMPLE_FIELDS
from robustbench_local.results.store import (
    ConceptRecord,
    JobExplain,
    JobKey,
    ResultsStore,
    ShiftKey,
)

SCRIPT_MODEL = "<script>alert(1)</script>"
K = 10  # classes


# Every figure of a report, in the page's order (what build_report must list).
FIGURE_IDS = (
    "accuracy_vs_eps",
    "confidence_vs_accuracy",
    "uncertainty_vs_eps",
    "detection_auroc_vs_eps",
    "reliability",
    "risk_coverage",
    "examples",
    "attributions",
    "concepts",
    "per_class",
    "accuracy_vs_severity",
    "calibration_under_shift",
    "ood_detection",
)


@dataclass(frozen=True)
class ModelKind:
    """How a synthetic model behaves: clean accuracy, how fast attacks break it, uncertainty."""

    name: str
    clean_accuracy: float
    break_rate: float  # fraction of samples PGD breaks per unit eps (capped at 1)
    adv_confidence: float  # mean confidence of a fooled prediction
    epistemic_share: float  # 0 for a deterministic model


MODELS = (
    ModelKind("standard", 0.97, 9.0, 0.93, 0.0),
    ModelKind("pgd-at", 0.93, 2.0, 0.55, 0.0),
    ModelKind(SCRIPT_MODEL, 0.98, 7.0, 0.62, 0.35),
)
ATTACKS = ("fgsm", "pgd")
ATTACK_STRENGTH = {"fgsm": 0.6, "pgd": 1.0}
EPS = (0.0, 0.05, 0.1, 0.2)
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "contrast", "rotate")
SEVERITIES = (1, 2, 3, 4, 5)
OOD_SETS = ("uniform", "sklearn-photos")
# How hard each corruption / OOD set is; a name not listed gets a difficulty from its hash.
DIFFICULTY = {"gaussian_noise": 0.9, "defocus_blur": 0.7, "contrast": 0.55, "rotate": 0.4}
OOD_HARDNESS = {"uniform": 0.1, "sklearn-photos": 0.6}


def _entropy_of_top(confidence: np.ndarray) -> np.ndarray:
    """Entropy (nats) of a K-class prediction with top probability c and the rest spread."""
    c = np.clip(confidence, 1e-6, 1 - 1e-6)
    rest = (1 - c) / (K - 1)
    return -(c * np.log(c) + (K - 1) * rest * np.log(rest))


def _predictions(
    rng: np.random.Generator, label: np.ndarray, correct: np.ndarray, confidence: np.ndarray
) -> dict[str, np.ndarray]:
    wrong = (label + rng.integers(1, K, len(label))) % K
    pred = np.where(correct, label, wrong)
    p_true = np.where(correct, confidence, (1 - confidence) / (K - 1))
    return {
        "pred": pred,
        "confidence": confidence,
        "nll": -np.log(p_true),
        "brier": np.where(
            correct,
            (1 - confidence) ** 2 + (1 - confidence) ** 2 / (K - 1),
            confidence**2 + (1 - p_true) ** 2,
        ),
    }


def job_samples(model: ModelKind, attack: str, eps: float, n: int) -> dict[str, np.ndarray]:
    """Per-sample columns of one job, deterministic in (model, attack, eps)."""
    base = np.random.default_rng([zlib.crc32(model.name.encode()), 7])
    label = base.integers(0, K, n)
    robustness = base.random(n)  # a sample breaks once the attack's reach passes it
    clean_ok = base.random(n) < model.clean_accuracy
    clean_conf = np.clip(
        np.where(clean_ok, 0.96, 0.6) + 0.04 * base.standard_normal(n), 0.2, 0.9995
    )
    reach = min(1.0, model.break_rate * ATTACK_STRENGTH[attack] * eps)
    adv_ok = clean_ok & (robustness >= reach)
    rng = np.random.default_rng(
        [zlib.crc32(model.name.encode()), zlib.crc32(attack.encode()), int(eps * 1000)]
    )
    adv_conf = np.where(
        adv_ok,
        clean_conf - 0.25 * eps * rng.random(n),
        model.adv_confidence + 0.06 * rng.standard_normal(n),
    )
    adv_conf = np.clip(adv_conf, 1.0 / K + 0.01, 0.9995)
    # The control: random noise of the same norm rarely changes a prediction.
    noise_ok = clean_ok & (rng.random(n) >= 0.1 * reach)
    noise_conf = np.clip(clean_conf - 0.05 * eps * rng.random(n), 1.0 / K + 0.01, 0.9995)
    out: dict[str, np.ndarray] = {"idx": np.arange(n), "label": label}
    for prefix, ok, conf, share in (
        ("clean", clean_ok, clean_conf, model.epistemic_share * 0.3),
        ("adv", adv_ok, adv_conf, model.epistemic_share * (0.3 + 3 * eps)),
        ("noise", noise_ok, noise_conf, model.epistemic_share * (0.3 + 0.5 * eps)),
    ):
        # The clean columns are the same in every job of a model (the same model and inputs).
        gen = base if prefix == "clean" else rng
        for name, values in _predictions(gen, label, ok, conf).items():
            out[f"{prefix}_{name}"] = values
        total = _entropy_of_top(conf)
        out[f"{prefix}_total"] = total
        out[f"{prefix}_epistemic"] = min(share, 0.9) * total
        out[f"{prefix}_aleatoric"] = total - out[f"{prefix}_epistemic"]
    if eps == 0:  # the attack cannot move the input: adversarial = noisy = clean
        for name in ("pred", "confidence", "total", "aleatoric", "epistemic", "nll", "brier"):
            out[f"adv_{name}"] = out[f"noise_{name}"] = out[f"clean_{name}"]
    out["linf"] = np.full(n, eps)
    out["l2"] = eps * np.sqrt(64) * (0.6 + 0.4 * rng.random(n))
    return out


def _difficulty(name: str, table: dict[str, float]) -> float:
    return table.get(name, 0.3 + 0.6 * (zlib.crc32(name.encode()) % 100) / 100)


def _shift_predictions(
    rng: np.random.Generator,
    label: np.ndarray,
    ok: np.ndarray,
    conf: np.ndarray,
    epistemic_share: float,
) -> dict[str, np.ndarray]:
    """The unprefixed per-sample fields of a model on shifted inputs."""
    out = _predictions(rng, label.clip(0), ok, conf)
    total = _entropy_of_top(conf)
    out["total"] = total
    out["epistemic"] = min(epistemic_share, 0.9) * total
    out["aleatoric"] = total - out["epistemic"]
    return out


def clean_columns(model: ModelKind, n: int) -> dict[str, np.ndarray]:
    """The model's clean per-sample fields (unprefixed), as every attack job stores them."""
    samples = job_samples(model, ATTACKS[0], 0.0, n)
    return {f: samples[f"clean_{f}"] for f in SAMPLE_FIELDS}


def corruption_samples(
    model: ModelKind, corruption: str, severity: int, n: int
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(stored columns, metrics) of one corruption job, deterministic in its arguments.

    A sample breaks once the damage passes its latent robustness for that corruption, so
    a sample broken at one severity stays broken at the next ones.
    """
    clean = job_samples(model, ATTACKS[0], 0.0, n)
    label, clean_ok = clean["label"], clean["clean_pred"] == clean["label"]
    latent = np.random.default_rng(
        [zlib.crc32(model.name.encode()), zlib.crc32(corruption.encode())]
    )
    robustness = latent.random(n)
    factor = min(1.0, 0.6 + model.break_rate / 20)  # adversarial training helps a little
    damage = min(1.0, _difficulty(corruption, DIFFICULTY) * factor * severity / 5)
    ok = clean_ok & (robustness >= damage)
    rng = np.random.default_rng(
        [zlib.crc32(model.name.encode()), zlib.crc32(corruption.encode()), severity]
    )
    stochastic = model.epistemic_share > 0
    # A deterministic model stays about as confident when wrong; the ensemble's members
    # disagree, so its confidence falls with the damage.
    wrong_conf = (
        model.adv_confidence - (0.3 * damage if stochastic else 0.0)
    ) + 0.06 * rng.standard_normal(n)
    right_conf = clean["clean_confidence"] - (0.35 if stochastic else 0.1) * damage * rng.random(n)
    conf = np.clip(np.where(ok, right_conf, wrong_conf), 1.0 / K + 0.01, 0.9995)
    share = model.epistemic_share * (0.3 + 2 * damage)
    preds = _shift_predictions(rng, label, ok, conf, share)
    columns = shift_sample_columns(label, _as_predictions(preds))
    return columns, corruption_metrics(columns, clean_columns(model, n), label)


def ood_samples(
    model: ModelKind, ood: str, n: int
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """(stored columns, metrics) of one OOD job: n inputs with label OOD_LABEL."""
    rng = np.random.default_rng([zlib.crc32(model.name.encode()), zlib.crc32(ood.encode()), 99])
    hardness = _difficulty(ood, OOD_HARDNESS)
    stochastic = model.epistemic_share > 0
    centre = 0.8 + 0.15 * hardness if not stochastic else 0.35 + 0.5 * hardness
    conf = np.clip(centre + 0.1 * rng.standard_normal(n), 1.0 / K + 0.01, 0.9995)
    share = model.epistemic_share * (2.5 - 2 * hardness)
    label = np.full(n, OOD_LABEL)
    preds = _shift_predictions(rng, label, np.zeros(n, bool), conf, share)
    columns = shift_sample_columns(label, _as_predictions(preds))
    return columns, ood_metrics(columns, clean_columns(model, n))


def _as_predictions(fields: dict[str, np.ndarray]) -> Predictions:
    return Predictions(**{f: fields[f] for f in SAMPLE_FIELDS})


def job_examples(
    samples: dict[str, np.ndarray], eps: float, count: int
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Real digits as the clean images, each perturbed by eps * a fixed sign pattern."""
    digits = load_digits()
    out = []
    for idx in samples["idx"][:count]:
        label = int(samples["label"][idx])
        image = digits.images[np.flatnonzero(digits.target == label)[idx % 20]] / 16.0
        clean = image.astype(np.float32)[None]
        signs = np.sign(np.random.default_rng(int(idx)).standard_normal(clean.shape))
        adv = np.clip(clean + eps * signs, 0, 1).astype(np.float32)
        out.append((int(idx), clean, adv))
    return out


@functools.cache
def _job(model: ModelKind, attack: str, eps: float, n: int, examples: int) -> tuple:
    """(samples, metrics, examples) of one job; cached, as runs share jobs between tests."""
    samples = job_samples(model, attack, eps, n)
    return samples, job_metrics(samples), job_examples(samples, eps, examples)


def explain_metrics(model: ModelKind, attack: str, eps: float) -> dict[str, float]:
    """The explanation metrics of one job: 1 and NaN at eps 0 (nothing moved)."""
    reach = min(1.0, model.break_rate * ATTACK_STRENGTH[attack] * eps)
    return {
        "attribution_similarity": 1.0 - 0.7 * reach,
        "attribution_similarity_noise": 1.0 - 0.2 * reach,
        "concept_shift": math.nan if eps == 0 else 0.55 + 0.35 * reach,
        "concept_shift_noise": math.nan if eps == 0 else 0.4 + 0.2 * reach,
    }


def explain_maps(
    images: list[tuple[int, np.ndarray, np.ndarray]], eps: float
) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """(idx, clean map, adversarial map, Spearman) per stored example: the clean map follows
    the stroke, the adversarial one drifts to random pixels in proportion to eps."""
    out = []
    for idx, clean, _ in images:
        stroke = clean[0].astype(np.float64)
        clean_map = 0.2 * stroke + 0.05 * np.random.default_rng(int(idx)).random(stroke.shape)
        drift = np.random.default_rng([int(idx), int(eps * 1000)]).random(stroke.shape)
        adv_map = (1 - min(1.0, 3 * eps)) * clean_map + min(1.0, 3 * eps) * 0.3 * drift
        rho = 1.0 if eps == 0 else float(spearmanr(clean_map.ravel(), adv_map.ravel())[0])
        out.append((int(idx), clean_map.astype(np.float32), adv_map.astype(np.float32), rho))
    return out


@functools.cache
def concept_record(model: ModelKind, n: int) -> ConceptRecord:
    """4 directions of 32 features, each with 5 real digits of one class as its exemplars."""
    digits = load_digits()
    k, per = 4, 5
    labels = [[(d * 3 + zlib.crc32(model.name.encode())) % K] * per for d in range(k)]
    picked = [
        [int(np.flatnonzero(digits.target == row[0])[j]) for j in range(per)] for row in labels
    ]
    images = (digits.images[np.array(picked)] / 16.0).astype(np.float32)[:, :, None]
    values = {
        "method": "saliency",
        "n_images": min(64, n),
        "subset": list(range(min(64, n))),
        "k_requested": 8,
        "k": k,
        "dims": 32,
        "n_concept_images": n,
        "explained_variance": 0.9,
        "exemplars": [[j % n for j in row] for row in picked],
        "exemplar_labels": labels,
    }
    return ConceptRecord(model.name, values, images)


_corruption_job = functools.cache(corruption_samples)
_ood_job = functools.cache(ood_samples)


def write_run(
    run_dir: Path,
    *,
    name: str = "digits-fixture",
    models: tuple[ModelKind, ...] = MODELS,
    attacks: tuple[str, ...] = ATTACKS,
    eps: tuple[float, ...] = EPS,
    n: int = 80,
    examples: int = 3,
    complete: bool = True,
    skip: frozenset[JobKey | ShiftKey] = frozenset(),
    nan_metrics: tuple[str, ...] = (),
    corruptions: tuple[str, ...] = (),
    severities: tuple[int, ...] = SEVERITIES,
    ood: tuple[str, ...] = (),
    shift_section: bool | None = None,
    explain: bool = True,
) -> Path:
    """Write a run folder with results.sqlite (every job of the grid but those in skip).

    ``nan_metrics`` are stored as NaN in every job (an undefined AUROC, say). With
    ``corruptions`` and ``ood`` the config gets a [shift] section (``shift_section`` forces
    it on or off) and the store every (model, corruption, severity) and (model, ood) job.
    ``explain=False`` stores what a run with [explain] enabled = false does: no explanations.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "run": {"name": name, "dataset": "digits", "n_examples": n, "seed": 0, "split": "test"},
        "models": [{"name": m.name, "zoo": "digits-cnn", "recipe": "standard"} for m in models],
        "attacks": [{"label": a, "name": a, "params": {}} for a in attacks],
        "sweep": {"eps": list(eps), "norm": "linf"},
        "explain": {"enabled": explain, "n_images": 64, "k": 4, "method": "saliency"},
    }
    if shift_section or (shift_section is None and (corruptions or ood)):
        config["shift"] = {
            "corruptions": list(corruptions),
            "severities": list(severities),
            "ood": list(ood),
        }
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.set_meta("digest", "0123456789abcdef")
        store.set_meta("config", config)
        store.set_meta("config_source", "<fixture>")
        store.set_meta(
            "environment",
            {"torch": "2.14.1", "numpy": "2.4.6", "python": "3.11", "device": "cpu"},
        )
        store.set_meta("n_examples", n)
        for model in models:
            record: ConceptRecord | None = concept_record(model, n) if explain else None
            for attack in attacks:
                for e in eps:
                    key = JobKey(model.name, attack, e)
                    if key in skip:
                        continue
                    samples, metrics, images = _job(model, attack, e, n, examples)
                    stored = None
                    if explain:
                        metrics = {**metrics, **explain_metrics(model, attack, e)}
                        stored = JobExplain(explain_maps(images, e), record)
                        record = None  # the runner sends it with the model's first job
                    metrics = {**metrics, **dict.fromkeys(nan_metrics, math.nan)}
                    store.write_job(key, metrics, samples, images, seconds=1.0, explain=stored)
            for corruption in corruptions:
                for severity in severities:
                    shift_key = ShiftKey(model.name, "corruption", corruption, severity)
                    if shift_key not in skip:
                        columns, metrics = _corruption_job(model, corruption, severity, n)
                        store.write_shift_job(shift_key, metrics, columns, seconds=0.5)
            for name in ood:
                shift_key = ShiftKey(model.name, "ood", name)
                if shift_key not in skip:
                    columns, metrics = _ood_job(model, name, n)
                    store.write_shift_job(shift_key, metrics, columns, seconds=0.5)
        store.set_meta("complete", complete)
    return run_dir


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete stored run (3 models x 2 attacks x 4 eps, 80 samples, and 4 corruptions x
    5 severities and 2 OOD sets per model); not yet reported."""
    return write_run(
        tmp_path_factory.mktemp("runs") / "digits-fixture", corruptions=CORRUPTIONS, ood=OOD_SETS
    )


@pytest.fixture(scope="session")
def built_run(fixture_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """A copy of the fixture run with its report built once; tests must not change it."""
    from reports import build_report

    run_dir = tmp_path_factory.mktemp("built") / fixture_run.name
    shutil.copytree(fixture_run, run_dir)
    return run_dir, build_report(run_dir)
