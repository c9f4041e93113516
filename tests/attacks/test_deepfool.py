"""DeepFool: exact on linear models, near-minimal on the digits CNN, against foolbox's."""

from __future__ import annotations

from itertools import pairwise

import foolbox
import pytest
import torch

from attacks import StepInfo, deepfool
from attacks.losses import margin
from tests.attacks.models import Untouched, in_mixed_mode, linear_model, tiny_net

# Wide bounds, so no step of the linear cases is clipped.
WIDE = (-50.0, 50.0)


def _linear_case(seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 5-class linear model in float64 and 32 inputs labelled with its predictions.

    Returns the model, x (32, 6), y and W (5, 6).
    """
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    bias = torch.randn(5, generator=generator, dtype=torch.float64)
    model = linear_model(weight, bias)
    x = torch.randn(32, 6, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    return model, x, y, weight


def _analytic_distance(model, x, y, weight, norm: str) -> torch.Tensor:
    """Per row, the distance to the nearest point the model does not label y: the nearest
    of the hyperplanes f_k = f_y, |f_y - f_k| / ||w_k - w_y||_q (q = 2 for l2, 1 for linf)."""
    with torch.no_grad():
        logits = model(x)
    gaps = logits.gather(1, y[:, None]) - logits  # (B, K), >= 0
    normals = weight[None, :, :] - weight[y][:, None, :]  # (B, K, D)
    dual = normals.norm(dim=2) if norm == "l2" else normals.abs().sum(dim=2)
    distance = gaps / dual
    distance[torch.arange(len(y)), y] = float("inf")
    return distance.min(dim=1).values


def _size(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("seed", [0, 1])
def test_one_step_is_exact_on_a_linear_model(norm: str, seed: int) -> None:
    model, x, y, weight = _linear_case(seed)
    expected = _analytic_distance(model, x, y, weight, norm)

    # overshoot=0: on the decision boundary, at exactly the minimal distance.
    x_adv = deepfool(model, x, y, norm=norm, overshoot=0.0, candidates=None, bounds=WIDE)
    torch.testing.assert_close(_size(x_adv - x, norm), expected, rtol=1e-10, atol=0)
    with torch.no_grad():
        gap = margin(model(x_adv), y)  # max_{k != y} f_k - f_y: zero on the boundary
    assert float(gap.abs().max()) < 1e-10

    # With an overshoot every row is fooled by the first step, by (1 + overshoot) times it.
    steps: list[StepInfo] = []
    x_adv = deepfool(model, x, y, norm=norm, overshoot=0.02, bounds=WIDE, callback=steps.append)
    assert [(i.step, len(i.active), int(i.fooled.sum())) for i in steps] == [
        (0, 32, 0),
        (1, 32, 32),
    ]
    torch.testing.assert_close(_size(x_adv - x, norm), 1.02 * expected, rtol=1e-10, atol=0)


def test_l2_step_goes_straight_to_the_nearest_hyperplane() -> None:
    model, x, y, weight = _linear_case(2)
    x_adv = deepfool(model, x, y, overshoot=0.0, bounds=WIDE)
    with torch.no_grad():
        nearest = model(x_adv).scatter(1, y[:, None], float("-inf")).argmax(dim=1)
    normal = weight[nearest] - weight[y]
    cosine = torch.nn.functional.cosine_similarity(x_adv - x, normal, dim=1)
    torch.testing.assert_close(cosine, torch.ones_like(cosine), rtol=0, atol=1e-10)


def test_fools_the_digits_cnn_with_small_perturbations(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"], digits_split["y_test"]
    with torch.no_grad():
        correct = digits_model(x).argmax(dim=1) == y
    x_adv = deepfool(digits_model, x, y)
    with torch.no_grad():
        fooled = digits_model(x_adv).argmax(dim=1) != y
    assert float(fooled[correct].float().mean()) >= 0.9  # measured: every one of them
    assert torch.equal(x_adv[~correct], x[~correct])  # already wrong: nothing to do
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    # Measured mean l2 0.55 (PGD-l2 needs eps ~0.55 per sample on a 0.05 grid, and fools
    # 42% at eps 0.5, 99% at eps 1.0); a loose ceiling catches a DeepFool that overshoots.
    assert float(_size(x_adv - x, "l2")[correct & fooled].mean()) < 0.8


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_no_larger_than_foolbox_deepfool(digits_model64, digits_split64, norm: str) -> None:
    # foolbox re-runs the forward pass for every candidate class: a subset keeps it quick.
    x, y = digits_split64["x_test"][:24], digits_split64["y_test"][:24]
    attack = (
        foolbox.attacks.L2DeepFoolAttack if norm == "l2" else foolbox.attacks.LinfDeepFoolAttack
    )
    fmodel = foolbox.PyTorchModel(digits_model64, bounds=(0.0, 1.0))
    _, theirs, their_success = attack(steps=50, candidates=10, overshoot=0.02)(
        fmodel, x, y, epsilons=None
    )
    ours = deepfool(digits_model64, x, y, norm=norm, steps=50, candidates=10, overshoot=0.02)
    with torch.no_grad():
        correct = digits_model64(x).argmax(dim=1) == y
        our_success = digits_model64(ours).argmax(dim=1) != y
    both = correct & our_success & their_success
    assert int((correct & our_success).sum()) >= int((correct & their_success).sum())
    # Ours overshoots by 2% of the whole perturbation, foolbox's overshoot fades with its
    # steps (it crosses by adding 1e-4 per step instead): measured 1.01 x theirs.
    ratio = _size(ours - x, norm)[both].mean() / _size(theirs - x, norm)[both].mean()
    assert float(ratio) <= 1.05


def test_keeps_the_attack_conventions() -> None:
    net = in_mixed_mode(tiny_net(2, 5, 4, torch.float32))
    untouched = Untouched(net)
    x = torch.rand(6, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (6,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        x_adv = deepfool(net, x, y, norm="linf", steps=3)
    untouched.check()  # parameters, buffers, training flags, no .grad
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad


def test_callback_reports_the_margin_per_step(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:24], digits_split["y_test"][:24]
    infos: list[StepInfo] = []
    x_adv = deepfool(digits_model, x, y, callback=infos.append)
    assert torch.equal(x_adv, deepfool(digits_model, x, y))
    assert [i.step for i in infos] == list(range(len(infos)))
    with torch.no_grad():
        torch.testing.assert_close(infos[0].loss, margin(digits_model(x), y))
    # A row leaves after the step that fools it; its margin is then positive.
    for before, after in pairwise(infos):
        assert set(after.active.tolist()) == set(before.active[~before.fooled].tolist())
    assert all(bool((i.loss[i.fooled] > 0).all()) for i in infos)
