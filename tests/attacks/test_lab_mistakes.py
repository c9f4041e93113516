"""The mistakes a student makes that used to give silently wrong numbers or unhelpful errors:
each now warns or raises with a hint that says what to do."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from attacks import apgd, deepfool, fgsm, pgd, square
from tests.attacks.models import DigitsCNN


@pytest.fixture
def batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    return model, torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 3, 2, 1, 0])


def _attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kwargs):
    """Each attack with a tiny budget."""
    if name == "fgsm":
        return fgsm(model, x, y, 0.05, **kwargs)
    if name == "pgd":
        return pgd(model, x, y, 0.05, steps=2, **kwargs)
    if name == "apgd":
        return apgd(model, x, y, 0.05, steps=2, **kwargs)
    if name == "square":
        return square(model, x, y, 0.05, n_queries=3, **kwargs)
    return deepfool(model, x, y, steps=2, **kwargs)


ATTACKS = ["fgsm", "pgd", "apgd", "square", "deepfool"]


def _no_user_warnings(call) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        call()


# --- a model that ends in softmax --------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_probability_outputs_warn_to_return_logits(batch, attack: str) -> None:
    model, x, y = batch
    softmaxed = nn.Sequential(model, nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match=r"look like probabilities .* expect logits") as record:
        _attack(attack, softmaxed, x, y)
    message = str(record[0].message)
    assert "Drop the final softmax" in message and "torch.log(probs)" in message
    # The warning points at the caller's line, not inside the attacks package.
    assert record[0].filename == __file__
    # Logits, and log-probabilities (valid logits), do not warn.
    _no_user_warnings(lambda: _attack(attack, model, x, y))
    logged = nn.Sequential(model, nn.LogSoftmax(dim=1))
    _no_user_warnings(lambda: _attack(attack, logged, x, y))


# --- eps in 0..255 units -----------------------------------------------------------------------


def test_eps_covering_the_whole_range_names_the_unit_mistake(batch) -> None:
    model, x, y = batch
    with pytest.warns(UserWarning, match=r"eps=8 \(linf\) covers the whole input range") as record:
        pgd(model, x, y, 8, steps=1)
    assert "did you mean 8/255 = 0.03137?" in str(record[0].message)
    with pytest.warns(UserWarning, match=r"did you mean 8/255 = 0.03137\?"):
        fgsm(model, x, y, 8)
    with pytest.warns(UserWarning, match=r"did you mean 16/255"):
        square(model, x, y, 16, n_queries=2)
    # l2: the ball must reach across the box's diagonal, sqrt(16) * 1 = 4 here.
    with pytest.warns(UserWarning, match=r"eps=4 \(l2\) reaches every input"):
        apgd(model, x, y, 4.0, norm="l2", steps=2)
    # A large but meaningful eps does not warn: linf 0.5 or l2 3.9 on [0, 1].
    _no_user_warnings(lambda: pgd(model, x, y, 0.5, steps=1))
    _no_user_warnings(lambda: pgd(model, x, y, 3.9, norm="l2", steps=1))


def test_eps_warning_scales_the_suggestion_to_the_bounds(batch) -> None:
    model, x, y = batch
    with pytest.warns(UserWarning, match=r"did you mean 8/255 \* 2 = 0.06275\?"):
        pgd(model, x * 2 - 1, y, 8, steps=1, bounds=(-1.0, 1.0))


# --- targets the model already predicts --------------------------------------------------------


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "apgd", "square"])
def test_targets_equal_to_the_predictions_warn(batch, attack: str) -> None:
    model, x, _ = batch
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    # Start at x itself where the attack has a choice, so the count below is exact.
    start = {"random_start": False} if attack in ("pgd", "apgd") else {}
    with pytest.warns(UserWarning, match=r"already predicts the target for \d of 6 rows") as rec:
        _attack(attack, model, x, predicted, targeted=True, **start)
    assert "did you pass the true labels" in str(rec[0].message)
    # Targets the model does not predict are a real targeted attack: no warning.
    others = (predicted + 1) % 4
    _no_user_warnings(lambda: _attack(attack, model, x, others, targeted=True, **start))


# --- the batch dimension -----------------------------------------------------------------------


def test_one_image_without_batch_dimension_and_a_scalar_label() -> None:
    model = DigitsCNN()
    image = torch.rand(1, 8, 8)  # (C, H, W): one digit
    # One label for an x whose first axis is not 1: the hint, not just "y must have shape".
    for label in (torch.tensor(3), torch.tensor([3])):
        with pytest.raises(ValueError, match=r"y must have shape \(3,\) .* looks like one sample"):
            pgd(model, torch.rand(3, 8, 8), label, 0.1)
    with pytest.raises(ValueError, match=r"got \(\); x of shape \(1, 8, 8\) .*x\[None\]"):
        pgd(model, image, torch.tensor(3), 0.1)
    # With a label of shape (1,) the shapes agree and the model itself fails on (1, 8, 8).
    with pytest.raises(ValueError, match=r"model failed on x of shape \(1, 8, 8\).*x\[None\]"):
        pgd(model, image, torch.tensor([3]), 0.1)
    with pytest.raises(ValueError, match=r"x\.unsqueeze\(0\)"):
        deepfool(model, image, torch.tensor([3]))
    # The fix works.
    pgd(model, image[None], torch.tensor([3]), 0.1, steps=1)


def test_flat_sample_without_batch_dimension() -> None:
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"got \(4,\); if x is a single sample.*x\[None\]"):
        fgsm(model, torch.rand(4), torch.tensor([1]), 0.1)


# --- outputs that are not a logits tensor -------------------------------------------------------


class Returns(nn.Module):
    """A model whose forward returns ``wrap(logits)``: a tuple, a dict, an HF-style object."""

    def __init__(self, wrap) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
        self.wrap = wrap

    def forward(self, x: torch.Tensor):
        return self.wrap(self.net(x))


class ModelOutput(OrderedDict):
    """Like transformers' ModelOutput: a mapping that also has attributes."""

    @property
    def logits(self) -> torch.Tensor:
        return self["logits"]


@pytest.mark.parametrize(
    ("wrap", "pattern"),
    [
        (lambda z: (z, z.detach()), r"got a tuple of 2 items: wrap .* self\.model\(x\)\[0\]"),
        (lambda z: {"out": z}, r"got a dict with keys \['out'\]: wrap .*self\.model\(x\)\['out'\]"),
        (
            lambda z: ModelOutput(logits=z, hidden=z),
            r"got a ModelOutput with a \.logits tensor: wrap .*self\.model\(x\)\.logits",
        ),
    ],
)
@pytest.mark.parametrize("attack", ["fgsm", "pgd", "deepfool"])
def test_non_tensor_outputs_say_how_to_wrap_the_model(batch, wrap, pattern, attack) -> None:
    _, x, y = batch
    with pytest.raises(TypeError, match=pattern):
        _attack(attack, Returns(wrap), x, y)


# --- float input into a half-precision model ----------------------------------------------------


def test_dtype_mismatch_names_both_dtypes_and_the_fix(batch) -> None:
    model, x, y = batch
    model = model.to(torch.bfloat16)  # CPU matmuls refuse mixed float32 / bfloat16
    with pytest.raises(TypeError, match=r"x has dtype torch.float32 but the model's weights") as e:
        pgd(model, x, y, 0.1, steps=1)
    assert "x.to(torch.bfloat16) or model.to(torch.float32)" in str(e.value)
    assert isinstance(e.value.__cause__, RuntimeError)  # the model's own error is kept
    with pytest.raises(TypeError, match=r"x.to\(torch.bfloat16\)"):
        deepfool(model, x, y)
    with pytest.raises(TypeError, match=r"x.to\(torch.bfloat16\)"):
        fgsm(model, x, y, 0.1)  # fgsm does not probe: the error comes from the attack's pass


def test_other_model_errors_propagate_unchanged(batch) -> None:
    _, x, y = batch
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(15, 4))  # 16 features in, 15 expected
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied"):
        pgd(wrong, x, y, 0.1)
