"""Adversarial attacks as pure functions over a PyTorch model.

    from attacks import apgd, fgsm, pgd, square
    x_adv = pgd(model, x, y, eps=0.1, steps=20)

Inputs live in pixel space within ``bounds``; the model returns logits (B, K). Every
gradient attack (fgsm, pgd, apgd) is one run of the shared loop in :mod:`attacks.descent`;
``square`` is a gradient-free random search that needs only the model's outputs.
"""

from attacks._driver import Objective
from attacks.apgd import apgd
from attacks.descent import Select
from attacks.fgsm import fgsm
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import pgd
from attacks.square import square
from attacks.stochastic import is_stochastic

__all__ = ["Loss", "Norm", "Objective", "Select", "apgd", "fgsm", "is_stochastic", "pgd", "square"]
