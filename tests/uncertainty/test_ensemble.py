"""DeepEnsemble: vectorised equals looped, eval mode, gradients, output conventions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uncertainty import DeepEnsemble, Vectorize, decompose, sample_probs


@pytest.fixture
def members(small_cnn):
    # Three CNNs that share an architecture (one vmap group) and an MLP (looped on its own).
    cnns = [small_cnn(seed=s) for s in range(3)]
    torch.manual_seed(9)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    return [cnns[0], mlp, cnns[1], cnns[2]]


@pytest.fixture
def x():
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(4))


def _reference_logits(members, x):
    """Each member called on its own in eval mode: what the ensemble must reproduce."""
    outputs = []
    for member in members:
        flag = member.training
        member.eval()
        outputs.append(member(x))
        member.train(flag)
    return torch.stack(outputs)


def test_groups_put_same_architecture_members_together(members):
    assert DeepEnsemble(members, vectorize="always")._groups() == [[0, 2, 3], [1]]
    assert DeepEnsemble(members, vectorize=True)._groups() == [[0, 2, 3], [1]]
    for never in ("never", False, Vectorize.NEVER):
        assert DeepEnsemble(members, vectorize=never)._groups() == [[0], [1], [2], [3]]
    # auto: vmap only off the CPU, where it was measured slower for CNNs.
    assert DeepEnsemble(members)._groups() == [[0], [2], [3], [1]]


def test_bad_vectorize_lists_the_choices(members):
    with pytest.raises(ValueError, match="vectorize must be one of 'auto', 'always', 'never'"):
        DeepEnsemble(members, vectorize="sometimes")


def test_vectorised_equals_looped_and_members_in_order(members, x):
    vectorised = DeepEnsemble(members, vectorize="always").member_logits(x)
    looped = DeepEnsemble(members, vectorize=False).member_logits(x)
    reference = _reference_logits(members, x)
    assert vectorised.shape == (4, 6, 10)
    torch.testing.assert_close(vectorised, looped, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vectorised, reference, rtol=1e-5, atol=1e-5)


def test_input_gradient_through_vmap_equals_the_loop(members, x):
    grads = []
    for vectorize in ("always", "never"):
        ens = DeepEnsemble(members, vectorize=vectorize)
        x_in = x.clone().requires_grad_(True)
        loss = F.cross_entropy(ens(x_in), torch.arange(6) % 10)
        (grad,) = torch.autograd.grad(loss, x_in)
        grads.append(grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    for member in members:
        assert all(p.grad is None for p in member.parameters())


def test_forward_is_log_of_mean_member_probability(members, x):
    ens = DeepEnsemble(members)
    probs = ens.sample_probs(x)
    expected = torch.log(probs.mean(dim=0))
    torch.testing.assert_close(ens(x), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(ens(x).exp().sum(-1), torch.ones(6), atol=1e-5)
    assert torch.allclose(probs.sum(-1), torch.ones(4, 6), atol=1e-5)


def test_members_run_in_eval_and_keep_their_flags_and_statistics(members, x):
    members[0].train()
    members[2].eval()
    members[2][1].train()  # a mixed state that .train(flag) could not restore
    stats = [m[1].running_mean.clone() for m in (members[0], members[2], members[3])]
    counts = [m[1].num_batches_tracked.clone() for m in (members[0], members[2], members[3])]
    ens = DeepEnsemble(members, vectorize="always")
    ens.train()  # the wrapper's mode must not matter either
    before_ens = [mod.training for mod in ens.modules()]
    out = ens.member_logits(x)
    torch.testing.assert_close(out, _reference_logits(members, x), rtol=1e-5, atol=1e-5)
    assert [mod.training for mod in ens.modules()] == before_ens
    ens.eval()
    for m in members:
        m.train()
    before = {id(m): [mod.training for mod in m.modules()] for m in members}
    ens.member_logits(x)
    assert {id(m): [mod.training for mod in m.modules()] for m in members} == before
    for m, mean, count in zip((members[0], members[2], members[3]), stats, counts, strict=True):
        assert torch.equal(m[1].running_mean, mean)
        assert torch.equal(m[1].num_batches_tracked, count)


@pytest.mark.parametrize("vectorize", ["always", "never"])
def test_dropout_inside_members_is_off(small_cnn, x, vectorize):
    member = small_cnn(dropout=0.9, feature_dropout=0.9).train()
    ens = DeepEnsemble([member, small_cnn(seed=1)], vectorize=vectorize)
    torch.testing.assert_close(ens(x), ens(x))


def test_vectorised_path_sees_updated_parameters(small_cnn, x):
    members = [small_cnn(seed=s) for s in range(2)]
    ens = DeepEnsemble(members, vectorize="always")
    before = ens(x)
    with torch.no_grad():
        members[1][-1].bias[0] += 5.0  # one class only: softmax ignores a common shift
    after = ens(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(
        after, DeepEnsemble(members, vectorize="never")(x), atol=1e-5, rtol=1e-5
    )


def test_sample_probs_helper_and_plain_model(members, x):
    ens = DeepEnsemble(members)
    assert sample_probs(ens, x).shape == (4, 6, 10)
    plain = sample_probs(members[1], x)
    assert plain.shape == (1, 6, 10)
    u = decompose(plain)
    torch.testing.assert_close(u.aleatoric, u.total)
    assert torch.equal(u.epistemic, torch.zeros_like(u.epistemic))


def test_single_member_ensemble_is_the_member(small_cnn, x):
    member = small_cnn().eval()
    ens = DeepEnsemble([member])
    torch.testing.assert_close(ens(x), F.log_softmax(member(x), dim=-1))


def test_bad_members_are_rejected():
    with pytest.raises(ValueError, match="members must hold at least one"):
        DeepEnsemble([])
    with pytest.raises(TypeError, match=r"members\[1\] must be an nn.Module; got str"):
        DeepEnsemble([nn.Linear(2, 2), "model"])
    with pytest.raises(TypeError, match="members must be a sequence"):
        DeepEnsemble(nn.Linear(2, 2))


def test_members_that_disagree_on_k_are_rejected():
    ens = DeepEnsemble([nn.Linear(4, 3), nn.Linear(4, 5)])
    with pytest.raises(ValueError, match=r"members\[1\]\(x\) returned shape \(2, 5\)"):
        ens(torch.randn(2, 4))


@pytest.mark.gpu
def test_cuda_auto_vectorises_and_equals_the_loop(small_cnn):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; torch.cuda.is_available() is False")
    members = [small_cnn(seed=s).cuda() for s in range(3)]
    x = torch.rand(6, 3, 8, 8, device="cuda", requires_grad=True)
    auto = DeepEnsemble(members)
    assert auto._groups() == [[0, 1, 2]]
    looped = DeepEnsemble(members, vectorize="never")
    torch.testing.assert_close(auto(x), looped(x), rtol=1e-4, atol=1e-5)
    (grad,) = torch.autograd.grad(auto(x).logsumexp(-1).sum() + auto(x)[:, 0].sum(), x)
    assert torch.isfinite(grad).all()
