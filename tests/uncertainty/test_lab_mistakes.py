"""The silent mistakes of a course lab, each made loud: probabilities passed where logits are
expected, int seeds, and probability samples that plot without `.detach()`."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import uncertainty
from uncertainty import (
    DeepEnsemble,
    HeteroscedasticHead,
    MCDropout,
    TemperatureScaler,
    decompose,
    sample_probs,
)
from uncertainty._validation import looks_like_probabilities

HINT = "remove its final softmax"


def _net(seed: int, *, softmax: bool = False, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(6, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(16, 4))
    if softmax:
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(12, 6, generator=torch.Generator().manual_seed(0))


# --- what counts as probabilities -------------------------------------------------------------


def test_softmax_rows_look_like_probabilities_and_logits_do_not() -> None:
    logits = torch.randn(32, 10, generator=torch.Generator().manual_seed(1)) * 3
    assert looks_like_probabilities(logits.softmax(-1))
    assert looks_like_probabilities(logits.softmax(-1).double())
    # bf16 softmax rows sum to 1 only within a few bf16 eps per class.
    assert looks_like_probabilities(logits.bfloat16().softmax(-1))
    assert looks_like_probabilities(logits.softmax(-1)[None].expand(3, -1, -1))  # (S, B, K)
    assert not looks_like_probabilities(logits)
    assert not looks_like_probabilities(logits.log_softmax(-1))  # log-probs are valid logits
    assert not looks_like_probabilities(logits.relu())  # non-negative, but no fixed sum
    assert not looks_like_probabilities(torch.ones(5, 1))  # K = 1: nothing to tell apart
    assert not looks_like_probabilities(torch.empty(0, 10))
    # One row that does not sum to 1 is enough to count as logits.
    mixed = logits.softmax(-1).clone()
    mixed[3] *= 2
    assert not looks_like_probabilities(mixed)


# --- warnings in the wrappers and sample_probs, an error in TemperatureScaler.fit -------------


def _one_warning(record: list[warnings.WarningMessage]) -> warnings.WarningMessage:
    assert len(record) == 1, [str(w.message) for w in record]
    return record[0]


def test_sample_probs_warns_on_a_model_that_ends_in_softmax(x) -> None:
    with pytest.warns(UserWarning, match=HINT) as record:
        sample_probs(_net(0, softmax=True), x)
    found = _one_warning(record)
    assert "model(x) looks like probabilities, not logits" in str(found.message)
    # The warning points at the line that called sample_probs, not inside the library.
    assert Path(found.filename).resolve() == Path(__file__).resolve()


def test_ensemble_warns_naming_the_softmax_members(x) -> None:
    ens = DeepEnsemble([_net(0), _net(1, softmax=True), _net(2, softmax=True)])
    with pytest.warns(UserWarning, match=HINT) as record:
        ens.sample_probs(x)
    assert "members[1, 2](x) looks like probabilities" in str(_one_warning(record).message)
    # forward, what an attack calls, warns too.
    with pytest.warns(UserWarning, match=r"members\[1, 2\]\(x\)"):
        ens(x)


def test_mc_dropout_warns_on_a_model_that_ends_in_softmax(x) -> None:
    mcd = MCDropout(_net(0, softmax=True, dropout=0.3), samples=4, generator=0, max_batch=12)
    with pytest.warns(UserWarning, match=HINT) as record:
        mcd.sample_probs(x)  # 4 chunks of one sample each: still one warning
    assert "model(x) looks like probabilities" in str(_one_warning(record).message)
    with pytest.warns(UserWarning, match=HINT):
        mcd(x)


def test_models_returning_logits_or_log_probs_raise_no_warning(x) -> None:
    log_softmax = nn.Sequential(_net(3), nn.LogSoftmax(dim=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_probs(_net(0), x)
        sample_probs(log_softmax, x)
        DeepEnsemble([_net(0), log_softmax]).sample_probs(x)
        MCDropout(_net(0, dropout=0.3), samples=3, generator=0).sample_probs(x)
        # Nested wrappers return log mean probabilities, which are valid logits.
        DeepEnsemble([DeepEnsemble([_net(0), _net(1)]), _net(2)]).sample_probs(x)


def test_the_check_does_not_break_the_ensemble_under_vmap() -> None:
    # Under torch.func.vmap a tensor's value cannot be read: the check is skipped there.
    ens = DeepEnsemble([_net(0), _net(1)])
    x = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(0))
    out = torch.func.vmap(ens)(x)
    torch.testing.assert_close(out, torch.stack([ens(row) for row in x]))


def test_temperature_fit_rejects_probabilities_with_the_hint() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 10, generator=generator) * 3
    y = torch.randint(0, 10, (500,), generator=generator)
    with pytest.raises(
        ValueError, match=f"logits must be logits; got values that look like.*{HINT}"
    ):
        TemperatureScaler().fit(logits.softmax(-1), y)  # was: T = 0.155, no complaint
    with pytest.raises(ValueError, match=HINT):
        TemperatureScaler().fit(logits.softmax(-1)[None].repeat(3, 1, 1), y)
    with pytest.raises(ValueError, match=HINT):
        TemperatureScaler().nll(logits.softmax(-1), y)
    # The fix the hint names, log-probabilities, is accepted and means the same as the logits.
    from_logits = float(TemperatureScaler().fit(logits, y).temperature)
    from_log_probs = float(TemperatureScaler().fit(logits.softmax(-1).log(), y).temperature)
    assert from_log_probs == pytest.approx(from_logits, rel=1e-4)


# --- int seeds wherever a generator is taken ---------------------------------------------------


def _mcd(generator: object) -> Callable[[torch.Tensor], torch.Tensor]:
    return MCDropout(_net(0, dropout=0.5), samples=5, generator=generator).sample_probs


def _head(generator: object) -> Callable[[torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    return HeteroscedasticHead(6, 4, samples=7, generator=generator)


SEEDED = {"MCDropout": _mcd, "HeteroscedasticHead": _head}


def test_every_public_generator_argument_is_covered_here() -> None:
    # A new public class or function with a `generator` must be added to SEEDED.
    taking = sorted(
        name
        for name in uncertainty.__all__
        if callable(obj := getattr(uncertainty, name))
        and "generator" in inspect.signature(obj).parameters
    )
    assert taking == sorted(SEEDED)


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_an_int_seed_is_a_private_seeded_generator(name: str, x) -> None:
    make = SEEDED[name]
    with torch.no_grad():
        by_int = make(7)(x)
        by_generator = make(torch.Generator().manual_seed(7))(x)
        other = make(8)(x)
    torch.testing.assert_close(by_int, by_generator, rtol=0, atol=0)
    assert not torch.equal(by_int, other)


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_a_bad_generator_is_a_type_error_naming_the_argument(name: str) -> None:
    with pytest.raises(TypeError, match=r"generator must be None, an int seed or a torch\.Gen"):
        SEEDED[name]("0")


# --- probability samples and their decomposition plot without .detach() -----------------------


def _samplers() -> dict[str, nn.Module]:
    ens = DeepEnsemble([_net(0), _net(1), _net(2)])
    generator = torch.Generator().manual_seed(0)
    val_x, val_y = torch.randn(64, 6, generator=generator), torch.randint(0, 4, (64,))
    with torch.no_grad():
        scaler = TemperatureScaler().fit(ens.member_logits(val_x), val_y)
    return {
        "plain": _net(0),
        "ensemble": ens,
        "mc_dropout": MCDropout(_net(0, dropout=0.3), samples=6, generator=0),
        "tempered": scaler.calibrate(ens),
    }


@pytest.mark.parametrize("kind", ["plain", "ensemble", "mc_dropout", "tempered"])
def test_samples_and_their_parts_plot_without_detach(kind: str, x) -> None:
    model = _samplers()[kind]
    for probs in (sample_probs(model, x), getattr(model, "sample_probs", lambda _: None)(x)):
        if probs is None:
            continue  # a plain model has no method
        assert not probs.requires_grad
        u = decompose(probs)
        for part in u:
            assert not part.requires_grad
            np.histogram(np.asarray(part))  # what plt.hist does first


@pytest.mark.parametrize("kind", ["plain", "ensemble", "mc_dropout", "tempered"])
def test_an_input_that_requires_grad_keeps_the_graph(kind: str, x) -> None:
    model = _samplers()[kind]
    x_in = x.clone().requires_grad_(True)
    epistemic = decompose(sample_probs(model, x_in)).total.sum()
    (grad,) = torch.autograd.grad(epistemic, x_in)
    assert grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_the_graph_reaches_the_input_under_torch_func_grad(x) -> None:
    ens = DeepEnsemble([_net(0), _net(1)])

    def mutual_information(inputs: torch.Tensor) -> torch.Tensor:
        return decompose(sample_probs(ens, inputs)).epistemic.sum()

    grad = torch.func.grad(mutual_information)(x)
    x_in = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(mutual_information(x_in), x_in)
    torch.testing.assert_close(grad, expected)


def test_training_through_the_samples_uses_sample_log_probs(x) -> None:
    # Parameters alone do not ask for a graph from sample_probs; sample_log_probs (and forward)
    # keep it, so a loss on the members' samples still trains them.
    ens = DeepEnsemble([_net(0), _net(1)])
    F.nll_loss(ens.sample_log_probs(x).mean(0), torch.zeros(12, dtype=torch.long)).backward()
    assert all(p.grad is not None for p in ens.parameters())
