"""SampledClassifier: the shared base of DeepEnsemble and MCDropout, open to users' samplers."""

from __future__ import annotations

import math

import pytest
import torch

from uncertainty import DeepEnsemble, MCDropout, SampledClassifier, decompose, sample_probs


class TwoOpinions(SampledClassifier):
    """Two samples that are sure of different classes: epistemic = ln 2 for every input."""

    def sample_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.zeros(2, x.shape[0], 3, dtype=torch.float64)
        probs[0, :, 0] = 1.0
        probs[1, :, 1] = 1.0
        return probs.clamp_min(1e-300).log()


def test_a_users_sampler_gets_forward_and_sample_probs() -> None:
    model = TwoOpinions()
    x = torch.zeros(4, 5)
    log_mean = model(x)
    assert log_mean.shape == (4, 3)
    assert torch.allclose(log_mean.exp(), torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    parts = decompose(sample_probs(model, x))
    assert torch.allclose(parts.epistemic, torch.full((4,), math.log(2), dtype=torch.float64))
    assert torch.allclose(parts.aleatoric, torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_a_sampler_without_samples_cannot_be_built() -> None:
    class Empty(SampledClassifier):
        pass

    with pytest.raises(TypeError, match="abstract method sample_log_probs"):
        Empty()


def test_the_heads_are_sampled_classifiers() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 3))
    assert isinstance(DeepEnsemble([net, net]), SampledClassifier)
    assert isinstance(MCDropout(net, samples=2), SampledClassifier)


def test_each_head_says_whether_it_is_stochastic() -> None:
    """The `stochastic` attribute attacks read: True, False, or None for unknown."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4, 3))
    assert TwoOpinions().stochastic is None  # a user's sampler: unknown unless declared
    assert MCDropout(net, samples=2).stochastic is True  # new masks on every call
    assert MCDropout(net, samples=2).eval().stochastic is True  # eval does not stop them
    # An ensemble runs its members in eval mode: it is as random as its members say.
    assert DeepEnsemble([net, net]).stochastic is None  # plain modules declare nothing

    class Sure(torch.nn.Module):
        stochastic = False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    assert DeepEnsemble([Sure(), Sure()]).stochastic is False
    assert DeepEnsemble([Sure(), MCDropout(net, samples=2)]).stochastic is True
    assert DeepEnsemble([Sure(), net]).stochastic is None
