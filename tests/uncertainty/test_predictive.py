"""sample_probs helper and log_mean_prob."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uncertainty import log_mean_prob, sample_probs


def test_log_mean_prob_is_stable_where_naive_log_underflows():
    log_probs = torch.tensor([[[0.0, -200.0]], [[0.0, -300.0]]])  # (S=2, B=1, K=2), float32
    out = log_mean_prob(log_probs)
    naive = torch.log(log_probs.exp().mean(0))
    assert torch.isinf(naive[0, 1])  # exp(-200) underflows in float32
    assert out[0, 1].item() == pytest.approx(-200.0 - math.log(2), rel=1e-6)
    assert out[0, 0].item() == pytest.approx(0.0, abs=1e-7)


def test_log_mean_prob_matches_the_definition():
    log_probs = F.log_softmax(torch.randn(5, 3, 4, dtype=torch.float64), dim=-1)
    torch.testing.assert_close(log_mean_prob(log_probs), torch.log(log_probs.exp().mean(0)))
    with pytest.raises(
        ValueError, match=r"log_probs must have shape \(S, B, K\); got shape \(3, 4\)"
    ):
        log_mean_prob(log_probs[0])


def test_plain_model_gives_one_sample():
    model = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    probs = sample_probs(model, x)
    assert probs.shape == (1, 2, 3)
    torch.testing.assert_close(probs[0], F.softmax(model(x), dim=-1))


def test_model_with_sample_probs_is_delegated_to():
    class Sampler(nn.Module):
        def sample_probs(self, x):
            return torch.full((4, len(x), 2), 0.5)

        def forward(self, x):
            raise AssertionError("forward must not be called when sample_probs exists")

    assert sample_probs(Sampler(), torch.zeros(3, 1)).shape == (4, 3, 2)


def test_wrong_output_shapes_are_reported():
    with pytest.raises(
        ValueError, match=r"model\(x\) must return \(B, K\) logits; got \(2, 3, 1\)"
    ):
        sample_probs(nn.Unflatten(1, (3, 1)), torch.zeros(2, 3))

    class Bad(nn.Module):
        def sample_probs(self, x):
            return torch.zeros(2, 2)

    with pytest.raises(ValueError, match=r"must return an \(S, B, K\) tensor; got \(2, 2\)"):
        sample_probs(Bad(), torch.zeros(2, 2))
