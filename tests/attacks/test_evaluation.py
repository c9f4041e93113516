"""robust_accuracy and success_rate: known answers, the benchmark's conventions, eval mode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attacks import pgd, robust_accuracy, success_rate
from tests.attacks.models import Untouched, in_mixed_mode, tiny_net


class Scores(nn.Module):
    """Returns its input as the logits: the prediction of row i is x[i].argmax()."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _one_hot(classes: list[int]) -> torch.Tensor:
    return nn.functional.one_hot(torch.tensor(classes), 3).float()


# Six samples, label 0 for all. Clean: rows 0-3 right, 4-5 wrong. Adversarial: rows 0-1
# still right, 2-3 fooled, 4 still wrong, 5 "corrected" by the attack.
Y = torch.zeros(6, dtype=torch.long)
X = _one_hot([0, 0, 0, 0, 1, 2])
X_ADV = _one_hot([0, 0, 1, 2, 1, 0])


def test_known_answers() -> None:
    model = Scores()
    # Accuracy on x_adv alone: rows 0, 1 and 5.
    assert robust_accuracy(model, X_ADV, Y) == pytest.approx(3 / 6)
    # With the clean x, a clean error is never robust (the benchmark's rule): rows 0 and 1.
    assert robust_accuracy(model, X_ADV, Y, x=X) == pytest.approx(2 / 6)
    # Success among the 4 initially correct: rows 2 and 3 fooled.
    assert success_rate(model, X, X_ADV, Y) == pytest.approx(2 / 4)
    # Batching changes nothing.
    assert robust_accuracy(model, X_ADV, Y, x=X, batch_size=4) == pytest.approx(2 / 6)
    assert success_rate(model, X, X_ADV, Y, batch_size=1) == pytest.approx(2 / 4)


def test_no_correct_sample_gives_nan_with_a_warning() -> None:
    wrong = torch.ones(3, dtype=torch.long)  # the model predicts 0 for every row of X[:3]
    with pytest.warns(UserWarning, match=r"none of the 3 clean samples correctly.*nan"):
        rate = success_rate(Scores(), X[:3], X_ADV[:3], wrong)
    assert math.isnan(rate)


def test_bad_arguments_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"x must have the shape of x_adv \(6, 3\); got \(5, 3\)"):
        success_rate(Scores(), X[:5], X_ADV, Y)
    with pytest.raises(ValueError, match=r"y must have shape \(6,\) to match x; got \(5,\)"):
        robust_accuracy(Scores(), X_ADV, Y[:5])
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1; got 0"):
        robust_accuracy(Scores(), X_ADV, Y, batch_size=0)
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module"):
        robust_accuracy(lambda t: t, X_ADV, Y)


def test_runs_the_model_in_eval_mode_without_touching_it() -> None:
    net = in_mixed_mode(tiny_net(1, 5, 4, torch.float32))  # dropout and BatchNorm matter
    untouched = Untouched(net)
    x = torch.rand(16, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(1))
    first = robust_accuracy(net, x, y)
    assert robust_accuracy(net, x, y) == first  # eval mode: no dropout noise
    untouched.check()
    with torch.no_grad():
        net.eval()
        expected = float((net(x).argmax(dim=1) == y).float().mean())
    assert first == pytest.approx(expected)


def test_on_an_attack_the_two_agree_with_each_other(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:100], digits_split["y_test"][:100]
    x_adv = pgd(digits_model, x, y, 0.1, generator=0)
    clean = robust_accuracy(digits_model, x, y)
    robust = robust_accuracy(digits_model, x_adv, y, x=x)
    # robust = clean * (1 - success): both count over the same initially correct samples.
    assert robust == pytest.approx(clean * (1 - success_rate(digits_model, x, x_adv, y)))
    assert robust == pytest.approx(robust_accuracy(digits_model, x_adv, y), abs=0.02)
