"""The automatic `select` and `early_stop` of the gradient attacks: by what the model is.

A stochastic model gets select="max_loss" and no early stop; a deterministic one
select="first_fooling" with early stop, the same answer for less work.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attacks._driver
from attacks import fgsm, pgd
from attacks.descent import Select
from attacks.stochastic import PROBE_ROWS, declared_stochastic, is_stochastic
from tests.attacks.models import Recorder, staircase
from uncertainty import DeepEnsemble, MCDropout


def _dropout_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10)
    )


class NoisyNet(nn.Module):
    """Stochastic without saying so: Gaussian noise on its input in every forward call."""

    def __init__(self, model: nn.Module, scale: float = 0.1) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x + self.scale * torch.randn_like(x))


class Declares(nn.Module):
    """A model that declares `stochastic` (whatever it really is) and counts its rows."""

    def __init__(self, model: nn.Module, stochastic: object) -> None:
        super().__init__()
        self.model, self.stochastic, self.rows = model, stochastic, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += len(x)
        return self.model(x)


@pytest.fixture
def digits(digits_split) -> tuple[torch.Tensor, torch.Tensor]:
    return digits_split["x_test"][:48], digits_split["y_test"][:48]


# --- what is stochastic ------------------------------------------------------------------------


def test_uncertainty_wrappers_declare_it(digits) -> None:
    net = _dropout_net()
    assert declared_stochastic(MCDropout(net, samples=4)) is True
    assert declared_stochastic(net) is None
    # Plain members say nothing: the ensemble does not know (members run in eval mode).
    assert declared_stochastic(DeepEnsemble([net, _dropout_net()])) is None
    assert declared_stochastic(DeepEnsemble([Declares(net, False)])) is False
    assert declared_stochastic(DeepEnsemble([net, MCDropout(net, samples=2)])) is True
    # Only a bool is a declaration.
    assert declared_stochastic(Declares(net, "yes")) is None
    x = digits[0]
    assert is_stochastic(MCDropout(net, samples=4), x)
    assert not is_stochastic(DeepEnsemble([net, _dropout_net()]), x)


def test_an_undeclared_noisy_model_is_detected_and_a_plain_one_is_not(digits) -> None:
    net = _dropout_net().train()  # dropout is off in eval mode, where the check runs
    x = digits[0]
    recorder = Recorder(NoisyNet(net))
    assert is_stochastic(recorder, x)
    assert [len(b) for b in recorder.seen] == [PROBE_ROWS, PROBE_ROWS]
    assert not is_stochastic(net, x)
    assert net.training and net[3].training  # flags restored
    # A declaration is believed, and costs no forward pass.
    declared = Declares(NoisyNet(net), False)
    assert not is_stochastic(declared, x) and declared.rows == 0


class RoundOff(nn.Module):
    """Deterministic up to float rounding: every other call adds one ulp to each logit, as
    a GPU kernel with atomics may."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = self.model(x)
        return torch.nextafter(logits, logits + 1) if self.calls % 2 else logits


def test_float_rounding_is_not_randomness(digits) -> None:
    assert not is_stochastic(RoundOff(_dropout_net()), digits[0])


@pytest.mark.parametrize(
    ("declared", "early_stop", "select", "expected"),
    [
        (False, None, None, (True, Select.FIRST_FOOLING)),
        (True, None, None, (False, Select.MAX_LOSS)),
        (True, True, None, (True, Select.FIRST_FOOLING)),
        (True, False, None, (False, Select.MAX_LOSS)),
        (False, False, None, (False, Select.FIRST_FOOLING)),
        (True, None, "first_fooling", (True, Select.FIRST_FOOLING)),
        (False, None, "max_loss", (False, Select.MAX_LOSS)),
        (True, False, "first_fooling", (False, Select.FIRST_FOOLING)),
    ],
)
def test_resolution_table(monkeypatch, digits, declared, early_stop, select, expected) -> None:
    seen = {}

    def fake_descend(evaluate, x, y, **kwargs):
        options = kwargs["options"]
        seen.update(early_stop=options.early_stop, select=options.select)
        return x

    monkeypatch.setattr(attacks._driver, "descend", fake_descend)
    model = Declares(_dropout_net(), declared)
    x, y = digits
    pgd(model, x, y, 0.1, early_stop=early_stop, select=select)
    assert (seen["early_stop"], seen["select"]) == expected
    assert model.rows == 0  # a declaration, or an explicit choice, needs no probe


def test_early_stop_with_max_loss_is_still_an_error(digits) -> None:
    x, y = digits
    with pytest.raises(ValueError, match=r"early_stop=True .* select='max_loss'"):
        pgd(MCDropout(_dropout_net(), samples=2), x, y, 0.1, early_stop=True, select="max_loss")
    with pytest.raises(TypeError, match=r"early_stop must be True, False or None; got 1"):
        pgd(_dropout_net(), x, y, 0.1, early_stop=1)


# --- what the defaults return ------------------------------------------------------------------


def test_mc_dropout_default_is_max_loss(digits) -> None:
    x, y = digits
    net = _dropout_net()

    def run(**kwargs) -> torch.Tensor:
        # The same mask seeding and the same random start for every call.
        model = MCDropout(net, samples=4, generator=0)
        return pgd(model, x, y, 0.2, steps=5, generator=torch.Generator().manual_seed(0), **kwargs)

    default = run()
    assert torch.equal(default, run(select="max_loss"))
    assert torch.equal(default, run(select="max_loss", early_stop=False))
    # Asking for early stop asks for the first fooling iterate.
    assert torch.equal(run(early_stop=True), run(select="first_fooling", early_stop=True))


def test_deterministic_default_stops_early_on_a_trained_cnn(digits, digits_model) -> None:
    x, y = digits
    rows = {}
    for name, kwargs in {
        "default": {},
        "no early stop": {"early_stop": False, "select": "first_fooling"},
    }.items():
        recorder = Recorder(digits_model)
        pgd(recorder, x, y, 0.2, steps=10, generator=torch.Generator().manual_seed(0), **kwargs)
        rows[name] = [len(b) for b in recorder.seen]
    # The default first probes 8 rows twice (the CNN declares nothing), finds it
    # deterministic and stops on fooled samples, most of which fall within a few steps at
    # eps 0.2: fewer rows even with the probe's. (The same answer as without early stop is
    # checked exactly on a known-answer model below; here float32 rounding may differ with
    # the batch size.)
    assert rows["default"][:3] == [PROBE_ROWS, PROBE_ROWS, len(x)]
    assert sum(rows["default"]) < sum(rows["no early stop"]) - 2 * PROBE_ROWS


def test_deterministic_default_equals_no_early_stop_on_a_known_answer() -> None:
    """A binary linear model whose gradient sign cannot depend on rounding (see
    tests.attacks.models.staircase): the default returns what early_stop=False returns, for less."""
    model, x, y, eps, answer = staircase("linf")
    rows, results = {}, {}
    for name, kwargs in {
        "default": {},
        "no early stop": {"early_stop": False, "select": "first_fooling"},
    }.items():
        recorder = Recorder(model)
        results[name] = pgd(recorder, x, y, eps, steps=10, random_start=False, **kwargs)
        rows[name] = sum(len(b) for b in recorder.seen)
    torch.testing.assert_close(results["default"], answer, rtol=0, atol=1e-12)
    torch.testing.assert_close(results["no early stop"], answer, rtol=0, atol=1e-12)
    # 2 x 8 probe rows, then early stop; against 10 full calls and the 8 unfooled scored.
    assert rows["default"] == 2 * PROBE_ROWS + 144
    assert rows["no early stop"] == 10 * 24 + 8


def test_undeclared_noisy_model_gets_max_loss(digits, digits_model) -> None:
    x, y = digits
    recorder = Recorder(NoisyNet(digits_model))
    pgd(recorder, x, y, 0.2, steps=3)
    # Two probe passes, then every sample at every step and the final scoring of all:
    # no early stop, and max_loss scores even the fooled samples' last iterate.
    assert [len(b) for b in recorder.seen] == [PROBE_ROWS] * 2 + [len(x)] * 4


def test_fgsm_does_not_probe(digits) -> None:
    x, y = digits
    recorder = Recorder(NoisyNet(_dropout_net()))
    fgsm(recorder, x, y, 0.1)
    assert [len(b) for b in recorder.seen] == [len(x)]
    recorder = Recorder(_dropout_net())
    pgd(recorder, x, y, 0.1, steps=1)  # one step, one restart: a single candidate as well
    assert [len(b) for b in recorder.seen] == [len(x)]
