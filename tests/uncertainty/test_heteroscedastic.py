"""HeteroscedasticHead: known limits, usable as a model, learns noise where labels are noisy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uncertainty import HeteroscedasticHead, decompose, sample_probs


def test_zero_variance_gives_the_softmax_of_the_mean():
    head = HeteroscedasticHead(4, 3, samples=8, generator=0)
    with torch.no_grad():
        head.log_var.weight.zero_()
        head.log_var.bias.fill_(-60.0)  # std = exp(-30)
    features = torch.randn(5, 4)
    torch.testing.assert_close(head(features), F.log_softmax(head.mean(features), dim=-1))


def test_huge_noise_on_equal_means_gives_a_uniform_prediction():
    head = HeteroscedasticHead(2, 2, samples=20_000, generator=0)
    with torch.no_grad():
        head.mean.weight.zero_()
        head.mean.bias.zero_()
        head.log_var.weight.zero_()
        head.log_var.bias.fill_(math.log(100.0))
    probs = head(torch.randn(3, 2)).exp()
    torch.testing.assert_close(probs, torch.full((3, 2), 0.5), atol=0.02, rtol=0)


def test_output_is_normalised_and_differentiable():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), HeteroscedasticHead(5, 4, samples=10))
    x = torch.randn(7, 6, requires_grad=True)
    out = model(x)
    assert out.shape == (7, 4)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(7))
    (grad,) = torch.autograd.grad(F.cross_entropy(out, torch.arange(7) % 4), x)
    assert grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_logit_samples_have_the_predicted_mean_and_std():
    head = HeteroscedasticHead(3, 2, samples=40_000, generator=1)
    features = torch.randn(2, 3)
    mean, log_var = head.logit_distribution(features)
    samples = head.logit_samples(features)
    assert samples.shape == (40_000, 2, 2)
    torch.testing.assert_close(samples.mean(0), mean, atol=0.05, rtol=0, check_dtype=False)
    torch.testing.assert_close(
        samples.std(0), torch.exp(0.5 * log_var), atol=0.05, rtol=0.02, check_dtype=False
    )


def test_seeded_head_is_reproducible():
    features = torch.randn(4, 3)
    a = HeteroscedasticHead(3, 2, generator=5)
    b = HeteroscedasticHead(3, 2, generator=5)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(features), b(features), rtol=0, atol=0)
    a.manual_seed(9)
    b.manual_seed(9)
    torch.testing.assert_close(a(features), b(features), rtol=0, atol=0)


def test_noise_counts_as_aleatoric_not_epistemic():
    model = nn.Sequential(nn.Linear(3, 3), HeteroscedasticHead(3, 4, generator=0))
    probs = sample_probs(model, torch.randn(5, 3))
    assert probs.shape == (1, 5, 4)
    u = decompose(probs)
    assert torch.equal(u.epistemic, torch.zeros_like(u.epistemic))


def test_learns_larger_variance_where_labels_are_noisy():
    """Kendall-Gal training: inputs x < 0 have random labels, x > 0 clean ones."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(512, 1, generator=generator) * 2 - 1
    clean = (x[:, 0] > 0.5).long()
    noisy = torch.randint(0, 2, (512,), generator=generator)
    y = torch.where(x[:, 0] > 0, clean, noisy)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), HeteroscedasticHead(32, 2, 32, 0))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    with torch.no_grad():
        features = model[:2](torch.tensor([[-0.75], [-0.25], [0.25], [0.9]]))
        _, log_var = model[2].logit_distribution(features)
    noisy_var, clean_var = log_var[:2].mean(), log_var[2:].mean()
    assert noisy_var > clean_var + 1.0


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 3), ValueError, "in_features must be an int >= 1; got 0"),
        ((3, 0), ValueError, "num_classes must be an int >= 1; got 0"),
        ((3, 2, 0), ValueError, "samples must be an int >= 1; got 0"),
        ((3, 2, 4, 1.5), TypeError, "generator must be None, an int seed or a torch.Generator"),
    ],
)
def test_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        HeteroscedasticHead(*args)


def test_features_must_be_flat():
    with pytest.raises(
        ValueError, match=r"features must have shape \(B, D\); got shape \(2, 3, 1\)"
    ):
        HeteroscedasticHead(3, 2)(torch.randn(2, 3, 1))
