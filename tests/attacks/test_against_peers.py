"""Our attacks against torchattacks and foolbox on the same weights, eps, steps and step size.

Ours keeps each sample's best iterate while the peers return their last one, so our robust
accuracy must never be meaningfully higher (an attack weaker than a peer's is a bug).

Everything runs in float64: in float32 the CE gradient of a sample the model is sure of (half
the test digits) is rounding noise, and two libraries that scale the loss differently (mean
against sum) then step in different directions on different CPUs' kernels.
"""

from __future__ import annotations

import foolbox
import pytest
import torch
import torchattacks

from attacks import fgsm, pgd
from tests.attacks.models import (
    PEER_TOLERANCE,
    robust_accuracy,
)

EPSILONS = [0.02, 0.05, 0.1, 0.15]
STEPS = 10


@pytest.mark.parametrize("eps", EPSILONS)
def test_pgd_is_no_weaker_than_torchattacks_pgd(digits_model64, digits_split64, eps: float) -> None:
    x, y = digits_split64["x_test"], digits_split64["y_test"]
    step_size = 2.5 * eps / STEPS
    torch.manual_seed(0)
    peer = torchattacks.PGD(digits_model64, eps=eps, alpha=step_size, steps=STEPS)
    peer_accuracy = robust_accuracy(digits_model64, peer(x, y), y)
    ours = pgd(
        digits_model64,
        x,
        y,
        eps,
        steps=STEPS,
        step_size=step_size,
        generator=torch.Generator().manual_seed(0),
    )
    assert robust_accuracy(digits_model64, ours, y) <= peer_accuracy + PEER_TOLERANCE


@pytest.mark.parametrize("eps", EPSILONS)
def test_pgd_is_no_weaker_than_foolbox_linf_pgd(digits_model64, digits_split64, eps: float) -> None:
    x, y = digits_split64["x_test"], digits_split64["y_test"]
    step_size = 2.5 * eps / STEPS
    fmodel = foolbox.PyTorchModel(digits_model64, bounds=(0.0, 1.0))
    attack = foolbox.attacks.LinfPGD(abs_stepsize=step_size, steps=STEPS, random_start=True)
    torch.manual_seed(0)
    _, clipped, success = attack(fmodel, x, y, epsilons=eps)
    peer_accuracy = 1.0 - float(success.float().mean())
    # foolbox's success flag and a re-evaluation of its output must agree.
    assert robust_accuracy(digits_model64, clipped, y) == pytest.approx(peer_accuracy)
    ours = pgd(
        digits_model64,
        x,
        y,
        eps,
        steps=STEPS,
        step_size=step_size,
        generator=torch.Generator().manual_seed(0),
    )
    assert robust_accuracy(digits_model64, ours, y) <= peer_accuracy + PEER_TOLERANCE


@pytest.mark.parametrize("eps", EPSILONS)
def test_fgsm_agrees_with_torchattacks_fgsm(digits_model64, digits_split64, eps: float) -> None:
    x, y = digits_split64["x_test"], digits_split64["y_test"]
    theirs = torchattacks.FGSM(digits_model64, eps=eps)(x, y)
    ours = fgsm(digits_model64, x, y, eps)
    # torchattacks averages the loss over the batch and we sum it, which can only flip a
    # sign where a gradient coordinate is zero up to rounding (none were, in float64).
    mismatch = (ours - theirs).abs() > 1e-6
    assert float(mismatch.float().mean()) < 1e-3
    assert robust_accuracy(digits_model64, ours, y) == pytest.approx(
        robust_accuracy(digits_model64, theirs, y), abs=1.0 / len(y)
    )


def test_fgsm_agrees_with_foolbox_fgsm(digits_model64, digits_split64) -> None:
    x, y = digits_split64["x_test"], digits_split64["y_test"]
    fmodel = foolbox.PyTorchModel(digits_model64, bounds=(0.0, 1.0))
    _, theirs, _ = foolbox.attacks.FGSM()(fmodel, x, y, epsilons=0.1)
    ours = fgsm(digits_model64, x, y, 0.1)
    assert float(((ours - theirs).abs() > 1e-6).float().mean()) < 1e-3
