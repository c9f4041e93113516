"""Robust adversarial examples in the benchmark: the ``pgd-eot`` and ``apgd-eot`` attacks
(expectation over transformation, Athalye et al. 2018) and the judgement of their examples
under fresh transformations.

An EOT attack averages each step's gradient over random transformations of the input
(`robustbench_local.shifts.random_transform`: rotations, brightness, ...), so its example
should keep fooling the model however the input is turned or lit. Whether it does is
measured on transformations drawn from another seed than the attack's: an example counts as
robustly adversarial when it fools the model on at least ``robust_fraction`` of
``eval_draws`` draws. The same is measured for the clean input, so a reader can tell an
attack that survives the transformations from a transformation that fools the model alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attacks import apgd, fooled_under_transform, pgd
from attacks._checks import check_fraction, check_positive_int
from attacks.apgd import validate_options as validate_apgd
from attacks.descent import eval_mode
from attacks.evaluation import least_count
from attacks.pgd import validate_options as validate_pgd
from robustbench_local.results.schema import TRANSFORM_METRICS
from robustbench_local.results.store import TransformExample
from robustbench_local.shifts import RandomTransform, random_transform
from robustbench_local.shifts.transforms import check_severity, check_transform_names

__all__ = [
    "DEFAULT_TRANSFORMS",
    "GALLERY_DRAWS",
    "GALLERY_EXAMPLES",
    "TransformVerdicts",
    "apgd_eot",
    "eot_metrics",
    "judge_batch",
    "pgd_eot",
    "transform_of",
    "validate_apgd_eot",
    "validate_pgd_eot",
]

DEFAULT_TRANSFORMS = ("rotate", "brightness")
# The config parameters that say how an EOT example is judged, not how it is found.
JUDGEMENT_PARAMS = ("robust_fraction", "eval_draws")
GALLERY_EXAMPLES = 4  # first images of a job shown under transformations in the report
GALLERY_DRAWS = 3  # transformations drawn for each of them


def pgd_eot(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    transforms: tuple[str, ...] = DEFAULT_TRANSFORMS,
    severity: int = 3,
    eot_samples: int = 8,
    robust_fraction: float = 0.9,
    eval_draws: int = 32,
    **options: Any,
) -> Tensor:
    """PGD on the loss averaged over ``eot_samples`` random transformations per step.

    Args:
        model, x (B, C, H, W), y (B,), eps: as :func:`attacks.pgd`.
        transforms: names from ``robustbench_local.shifts.TRANSFORMS``, composed in order.
        severity: 1..5, the range of each transformation.
        eot_samples: transformations drawn per gradient.
        robust_fraction, eval_draws: how the benchmark judges the result (`judge_batch`);
            the attack does not use them.
        **options: any other :func:`attacks.pgd` argument (steps, step_size, generator, ...).

    Returns:
        (B, C, H, W) adversarial inputs.
    """
    transform = random_transform(tuple(transforms), severity)
    return pgd(model, x, y, eps, eot_samples=eot_samples, transform=transform, **options)


def apgd_eot(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    transforms: tuple[str, ...] = DEFAULT_TRANSFORMS,
    severity: int = 3,
    eot_samples: int = 8,
    robust_fraction: float = 0.9,
    eval_draws: int = 32,
    **options: Any,
) -> Tensor:
    """Auto-PGD on the loss averaged over ``eot_samples`` random transformations per step;
    arguments as `pgd_eot`, other options as :func:`attacks.apgd`."""
    transform = random_transform(tuple(transforms), severity)
    return apgd(model, x, y, eps, eot_samples=eot_samples, transform=transform, **options)


def _validate_eot(validate_attack: Any, **params: Any) -> None:
    """The EOT parameters' rules, then the attack's own for the rest."""
    if "transforms" in params:
        transforms = params["transforms"]
        if isinstance(transforms, str):
            raise TypeError(f"transforms must be a list of names; got {transforms!r}")
        check_transform_names(transforms, "transforms")
    if "severity" in params:
        check_severity(params["severity"])
    if "robust_fraction" in params:
        check_fraction("robust_fraction", params["robust_fraction"], allow_zero=False)
    if "eval_draws" in params:
        check_positive_int("eval_draws", params["eval_draws"])
    own = ("transforms", "severity", *JUDGEMENT_PARAMS)
    validate_attack(**{k: v for k, v in params.items() if k not in own})


def validate_pgd_eot(**params: Any) -> None:
    """pgd-eot's parameters: the transformations, the judgement, then pgd's rules."""
    _validate_eot(validate_pgd, **params)


def validate_apgd_eot(**params: Any) -> None:
    """apgd-eot's parameters: the transformations, the judgement, then apgd's rules."""
    _validate_eot(validate_apgd, **params)


def transform_of(params: Mapping[str, Any]) -> RandomTransform | None:
    """The transformation a job's attack parameters name; None for an attack without."""
    if "transforms" not in params:
        return None
    return random_transform(tuple(params["transforms"]), params.get("severity", 3))


@dataclass
class TransformVerdicts:
    """Per sample of one batch, how often fresh transformations fool the model.

    Attributes:
        clean: (B,) float, the share of draws on which the transformed clean input fools.
        adv: (B,) float, the same for the adversarial input.
        draws: the number of draws each share is of.
        gallery: the first images of the job's first batch (`GALLERY_EXAMPLES`), each
            under `GALLERY_DRAWS` draws, clean and adversarial under the same draw.
    """

    clean: np.ndarray
    adv: np.ndarray
    draws: int
    gallery: list[TransformExample] = field(default_factory=list)


def _predict(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.no_grad(), eval_mode(model):
        probs = model(x).float().softmax(dim=1)
    confidence, prediction = probs.max(dim=1)
    return prediction, confidence


def judge_batch(
    model: nn.Module,
    x: Tensor,
    x_adv: Tensor,
    y: Tensor,
    transform: RandomTransform,
    params: Mapping[str, Any],
    *,
    seed: int,
    first_index: int = 0,
    gallery: bool = False,
    reseed: Callable[[], None] | None = None,
) -> TransformVerdicts:
    """Judge one batch's clean and adversarial inputs under fresh transformations.

    The clean and the adversarial input of a sample see the same ``eval_draws`` draws (one
    generator seeded with ``seed`` for each), which must differ from the attack's.

    Args:
        model: the evaluation view of the model (logits (B, K)).
        x, x_adv: (B, C, H, W) clean and adversarial inputs; y: (B,) labels.
        transform: the attack's transformation (`transform_of`).
        params: the job's attack parameters (``eval_draws``).
        seed: the batch's judgement seed.
        first_index: the batch's first sample index in the evaluated split (the gallery's).
        gallery: also draw the report's gallery images for the batch's first samples.
        reseed: called before each input's judgement, so a stochastic model (MC dropout)
            judges the clean and the adversarial input under the same masks.

    Returns:
        the batch's `TransformVerdicts`.
    """
    draws = int(params.get("eval_draws", 32))
    shares = []
    for inputs in (x, x_adv):
        if reseed is not None:
            reseed()
        generator = torch.Generator(device=x.device).manual_seed(seed)
        fooled = fooled_under_transform(
            model, inputs, y, transform, samples=draws, generator=generator
        )
        shares.append(fooled.cpu().numpy())
    verdicts = TransformVerdicts(clean=shares[0], adv=shares[1], draws=draws)
    if gallery:
        keep = min(GALLERY_EXAMPLES, len(y))
        generator = torch.Generator(device=x.device).manual_seed(seed + 1)
        for draw in range(GALLERY_DRAWS):
            # One draw per image, the same for its clean and its adversarial input.
            state = generator.get_state()
            clean_t = transform(x[:keep], generator)
            generator.set_state(state)
            adv_t = transform(x_adv[:keep], generator)
            if reseed is not None:
                reseed()
            clean_pred, clean_conf = _predict(model, clean_t)
            if reseed is not None:
                reseed()
            adv_pred, adv_conf = _predict(model, adv_t)
            for i in range(keep):
                verdicts.gallery.append(
                    TransformExample(
                        idx=first_index + i,
                        draw=draw,
                        clean=clean_t[i].detach().cpu().numpy(),
                        adv=adv_t[i].detach().cpu().numpy(),
                        clean_pred=int(clean_pred[i]),
                        adv_pred=int(adv_pred[i]),
                        clean_confidence=float(clean_conf[i]),
                        adv_confidence=float(adv_conf[i]),
                    )
                )
    return verdicts


def eot_metrics(
    verdicts: list[TransformVerdicts], clean_correct: np.ndarray, robust_fraction: float
) -> dict[str, float]:
    """A job's numbers under fresh transformations, among the samples the model gets right.

    Args:
        verdicts: the job's batches in order (`judge_batch`).
        clean_correct: (N,) bool, the clean (untransformed) prediction is right.
        robust_fraction: the share of draws an input must fool on to count.

    Returns:
        transform_success_rate: the share of the correctly classified samples whose
        adversarial example fools on at least ``robust_fraction`` of the draws (beside the
        plain ``attack_success_rate``); transform_clean_error_rate: the same for the clean
        input (the transformations alone); transform_fooled_mean: the mean share of draws
        the adversarial example fools on. NaN when no sample is classified correctly.
    """
    if not clean_correct.any():
        return dict.fromkeys(TRANSFORM_METRICS, float("nan"))
    clean = np.concatenate([v.clean for v in verdicts])[clean_correct]
    adv = np.concatenate([v.adv for v in verdicts])[clean_correct]
    draws = verdicts[0].draws
    # The attacks' rule (`attacks.survives_transform`): at least ceil(fraction * draws) of
    # the draws, e.g. 29 of 32 for 0.9. A share is a count over draws: rint recovers it.
    need = least_count(robust_fraction, draws)
    return {
        "transform_success_rate": float(np.mean(np.rint(adv * draws) >= need)),
        "transform_clean_error_rate": float(np.mean(np.rint(clean * draws) >= need)),
        "transform_fooled_mean": float(np.mean(adv)),
    }
