"""TemperatureScaler: recovers a known temperature, lowers NLL, works on ensembles."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uncertainty import DeepEnsemble, TemperatureScaler, decompose, metrics, sample_probs


def _overconfident(n: int = 20_000, k: int = 10, true_t: float = 2.5, seed: int = 0):
    """Labels drawn from softmax(z); the model reports z * true_t (over-confident by T)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=generator) * 1.5
    y = torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(1)
    return z * true_t, y


def test_fits_a_known_temperature_and_lowers_nll():
    logits, y = _overconfident()
    scaler = TemperatureScaler().fit(logits, y)
    assert float(scaler.temperature) == pytest.approx(2.5, rel=0.05)
    before = F.cross_entropy(logits, y).item()
    after = F.cross_entropy(scaler(logits), y).item()
    assert after < before - 0.1
    assert scaler.nll(logits, y) == pytest.approx(after, rel=1e-5)
    assert scaler.nll(logits, y, temperature=1.0) == pytest.approx(before, rel=1e-5)


def test_the_fit_is_the_nll_minimum():
    logits, y = _overconfident(n=3000, seed=1)
    scaler = TemperatureScaler().fit(logits, y)
    t = float(scaler.temperature)
    best = scaler.nll(logits, y)
    for factor in (0.97, 1.03):
        assert scaler.nll(logits, y, temperature=t * factor) > best


def test_underconfident_logits_get_t_below_one():
    logits, y = _overconfident(true_t=0.5, seed=2)
    assert float(TemperatureScaler().fit(logits, y).temperature) == pytest.approx(0.5, rel=0.05)


def test_ensemble_per_member_logits():
    logits, y = _overconfident(n=5000, seed=3)
    generator = torch.Generator().manual_seed(4)
    members = logits[None] + torch.randn(4, *logits.shape, generator=generator) * 0.3
    scaler = TemperatureScaler().fit(members, y)
    assert scaler.fitted_on_samples
    assert float(scaler.temperature) > 1.5
    calibrated = scaler(members)
    assert calibrated.shape == logits.shape
    untempered = torch.logsumexp(F.log_softmax(members, -1), 0) - torch.log(torch.tensor(4.0))
    assert F.nll_loss(calibrated, y) < F.nll_loss(untempered, y) - 0.1


def test_calibrate_wraps_models_and_ensembles(small_cnn):
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
    ens = DeepEnsemble([small_cnn(seed=s) for s in range(3)])
    with torch.no_grad():
        # Fitted on the ensemble's (B, K) output: the wrapper tempers that output.
        mean_scaler = TemperatureScaler().fit(ens(x), y)
        torch.testing.assert_close(mean_scaler.calibrate(ens)(x), ens(x) / mean_scaler.temperature)
        assert sample_probs(mean_scaler.calibrate(ens), x).shape == (1, 64, 10)
        # Fitted on per-member logits: each member is tempered, samples stay samples.
        member_scaler = TemperatureScaler().fit(ens.member_logits(x), y)
        wrapped = member_scaler.calibrate(ens)
        torch.testing.assert_close(wrapped(x), member_scaler(ens.member_logits(x)))
        probs = sample_probs(wrapped, x)
        assert probs.shape == (3, 64, 10)
        t = member_scaler.temperature
        torch.testing.assert_close(probs, F.softmax(ens.member_logits(x) / t, -1))
        assert decompose(probs).epistemic.max() > 0
        assert metrics.nll(probs, y) <= metrics.nll(ens.sample_probs(x), y) + 1e-9


def test_temperature_is_a_buffer_saved_in_the_state_dict():
    scaler = TemperatureScaler(2.0)
    assert "temperature" in scaler.state_dict()
    assert list(scaler.parameters()) == []
    copy = TemperatureScaler()
    copy.load_state_dict(scaler.state_dict())
    assert float(copy.temperature) == 2.0


def test_fit_does_not_leave_gradients_and_accepts_logits_with_grad():
    logits, y = _overconfident(n=500)
    logits = logits.requires_grad_(True)
    TemperatureScaler().fit(logits, y)
    assert logits.grad is None


@pytest.mark.parametrize(
    ("logits", "y", "error", "match"),
    [
        (torch.randn(4), torch.zeros(4, dtype=torch.long), ValueError, "logits must have shape"),
        (
            torch.randn(4, 3),
            torch.zeros(5, dtype=torch.long),
            ValueError,
            r"y must have shape \(4,\)",
        ),
        (torch.randn(4, 3), torch.full((4,), 3), ValueError, r"class indices in \[0, 3\); got 3"),
        (torch.full((2, 3), float("nan")), torch.zeros(2, dtype=torch.long), ValueError, "finite"),
        (
            torch.ones(2, 3, dtype=torch.long),
            torch.zeros(2, dtype=torch.long),
            TypeError,
            "floating",
        ),
    ],
)
def test_bad_input(logits, y, error, match):
    with pytest.raises(error, match=match):
        TemperatureScaler().fit(logits, y)


def test_bad_temperature_and_bounds():
    with pytest.raises(ValueError, match="temperature must be a number > 0; got -1"):
        TemperatureScaler(-1.0)
    with pytest.raises(ValueError, match="bounds must satisfy 0 < low < high"):
        TemperatureScaler().fit(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), bounds=(2, 1))


def test_calibrate_needs_samples_when_fitted_on_samples():
    scaler = TemperatureScaler().fit(torch.randn(2, 8, 3), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="model must have sample_log_probs or sample_probs"):
        scaler.calibrate(nn.Linear(3, 3))
