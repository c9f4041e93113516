"""Adversarial attacks as pure functions over a PyTorch model.

    from attacks import apgd, deepfool, fgsm, pgd, square
    x_adv = pgd(model, x, y, eps=0.1, steps=20)
    robust_accuracy(model, x_adv, y), success_rate(model, x, x_adv, y)

Inputs live in pixel space within ``bounds``; the model returns logits (B, K). Every
gradient attack (fgsm, pgd, apgd) is one run of the shared loop in :mod:`attacks.descent`,
and takes a ``callback`` that sees each step (:class:`StepInfo`); ``square`` is a
gradient-free random search that needs only the model's outputs; ``deepfool`` looks for
the smallest perturbation that changes the prediction, with no eps.

Against a random input transformation (rotations, shifts, noise: a :data:`Transform`), the
gradient attacks take ``transform=`` and average over its draws (expectation over
transformation), and :func:`transform_success_rate` checks that an adversarial example
keeps fooling the model under fresh draws:

    x_adv = pgd(model, x, y, eps=0.1, transform=random_shift, eot_samples=8, generator=0)
    transform_success_rate(model, x_adv, y, random_shift, generator=1)
"""

from attacks._driver import Objective, Transform
from attacks.apgd import apgd
from attacks.deepfool import deepfool
from attacks.descent import Select, StepInfo
from attacks.evaluation import (
    fooled_under_transform,
    robust_accuracy,
    success_rate,
    survives_transform,
    transform_success_rate,
)
from attacks.fgsm import fgsm
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import pgd
from attacks.square import square
from attacks.stochastic import is_stochastic

__all__ = [
    "Loss",
    "Norm",
    "Objective",
    "Select",
    "StepInfo",
    "Transform",
    "apgd",
    "deepfool",
    "fgsm",
    "fooled_under_transform",
    "is_stochastic",
    "pgd",
    "robust_accuracy",
    "square",
    "success_rate",
    "survives_transform",
    "transform_success_rate",
]
