"""Adversarial attacks as pure functions over a PyTorch model.

    from attacks import fgsm, pgd
    x_adv = pgd(model, x, y, eps=0.1, steps=20)

Inputs live in pixel space within ``bounds``; the model returns logits (B, K). Every
gradient attack is one run of the shared loop in :mod:`attacks.descent`.
"""

from attacks.fgsm import fgsm
from attacks.losses import Loss
from attacks.norms import Norm
from attacks.pgd import pgd

__all__ = ["Loss", "Norm", "fgsm", "pgd"]
