"""Adversarial attacks as pure functions over a PyTorch model.

    from attacks import apgd, deepfool, fgsm, pgd, square
    x_adv = pgd(model, x, y, eps=0.1, steps=20)
    robust_accuracy(model, x_adv, y), success_rate(model, x, x_adv, y)

Inputs live in pixel space within ``bounds``; the model returns logits (B, K). Every
gradient attack (fgsm, pgd, apgd) is one run of the shared loop in :mod:`attacks.descent`,
and takes a ``callback`` that sees each step (:class:`StepInfo`); ``square`` is a
gradient-free random search that needs only the model's outputs; ``deepfool`` looks for
the smallest perturbation that changes the prediction, with no eps.
"""

from attacks._driver import Objective
from attacks.apgd import apgd
from attacks.deepfool import deepfool
from attacks.descent import Select, StepInfo
from attacks.evaluation import robust_accuracy, success_rate
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
    "apgd",
    "deepfool",
    "fgsm",
    "is_stochastic",
    "pgd",
    "robust_accuracy",
    "square",
    "success_rate",
]
