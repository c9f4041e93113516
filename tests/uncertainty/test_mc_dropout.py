"""MCDropout: batched sampling, eval-mode layers, restored state, reproducibility, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uncertainty import MCDropout, decompose, sample_probs
from uncertainty.mc_dropout import DROPOUT_LAYERS


@pytest.fixture
def x():
    return torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(3))


def _flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_batchnorm_statistics_and_mode_flags_are_untouched(small_cnn, x):
    model = small_cnn().train()
    model[1].eval()  # a mixed state must come back as it was
    bn = model[1]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = _flags(model)
    mcd = MCDropout(model, samples=8, generator=0)
    mcd(x)
    mcd.sample_probs(x)
    assert _flags(model) == flags
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert bn.num_batches_tracked.item() == 0


def test_batchnorm_uses_running_statistics(small_cnn, x):
    """With p -> 0 the samples must equal the eval-mode model, which needs BN in eval."""
    model = small_cnn(dropout=1e-9, feature_dropout=1e-9).train()
    probs = MCDropout(model, samples=3, generator=0).sample_probs(x)
    expected = F.softmax(model.eval()(x), dim=-1)
    for sample in probs:
        torch.testing.assert_close(sample, expected, rtol=1e-5, atol=1e-6)


def test_samples_differ_and_shapes(small_cnn, x):
    mcd = MCDropout(small_cnn(), samples=16, generator=1)
    probs = mcd.sample_probs(x)
    assert probs.shape == (16, 5, 10)
    torch.testing.assert_close(probs.sum(-1), torch.ones(16, 5))
    assert (probs[0] - probs[1]).abs().max() > 1e-4
    assert decompose(probs).epistemic.min() > 0
    assert sample_probs(mcd, x).shape == (16, 5, 10)


def test_stays_stochastic_after_eval_as_attacks_call_it(small_cnn, x):
    mcd = MCDropout(small_cnn(), samples=4)
    mcd.eval()
    assert not any(_flags(mcd))
    first, second = mcd(x), mcd(x)
    assert (first - second).abs().max() > 1e-5
    assert not any(_flags(mcd))


def test_forward_is_log_mean_of_the_samples(small_cnn, x):
    model = small_cnn()
    logits = MCDropout(model, samples=6, generator=7)(x)
    probs = MCDropout(model, samples=6, generator=7).sample_probs(x)
    torch.testing.assert_close(logits, torch.log(probs.mean(0)), rtol=1e-5, atol=1e-6)


def test_same_seed_same_masks_whatever_the_chunking(small_cnn, x):
    model = small_cnn()
    one_pass = MCDropout(model, samples=9, generator=5, max_batch=10_000).sample_probs(x)
    per_sample = MCDropout(model, samples=9, generator=5, max_batch=1).sample_probs(x)
    uneven = MCDropout(model, samples=9, generator=5, max_batch=2 * 5).sample_probs(x)
    torch.testing.assert_close(one_pass, per_sample, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(one_pass, uneven, rtol=1e-5, atol=1e-6)
    other_seed = MCDropout(model, samples=9, generator=6).sample_probs(x)
    assert (one_pass - other_seed).abs().max() > 1e-4


def test_int_seed_advances_and_manual_seed_replays(small_cnn, x):
    mcd = MCDropout(small_cnn(), samples=4, generator=11)
    first, second = mcd.sample_probs(x), mcd.sample_probs(x)
    assert (first - second).abs().max() > 1e-5
    mcd.manual_seed(11)
    torch.testing.assert_close(mcd.sample_probs(x), first, rtol=0, atol=0)


def test_torch_generator_and_global_rng_are_reproducible(small_cnn, x):
    model = small_cnn()
    a = MCDropout(model, 4, torch.Generator().manual_seed(2)).sample_probs(x)
    b = MCDropout(model, 4, torch.Generator().manual_seed(2)).sample_probs(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.manual_seed(123)
    c = MCDropout(model, 4).sample_probs(x)
    torch.manual_seed(123)
    d = MCDropout(model, 4).sample_probs(x)
    torch.testing.assert_close(c, d, rtol=0, atol=0)


def test_runs_in_chunks_not_one_call_per_sample(small_cnn, x):
    model = small_cnn()
    batch_sizes = []
    handle = model[0].register_forward_pre_hook(lambda m, args: batch_sizes.append(len(args[0])))
    try:
        MCDropout(model, samples=32, max_batch=5 * 10).sample_probs(x)
    finally:
        handle.remove()
    assert batch_sizes == [50, 50, 50, 10]


def test_default_row_budget_on_cpu(small_cnn):
    model = small_cnn()
    mcd = MCDropout(model, samples=12)
    assert mcd.rows_per_forward(torch.device("cpu")) == 512
    assert mcd.rows_per_forward(torch.device("cuda")) == 4096
    batch_sizes = []
    handle = model[0].register_forward_pre_hook(lambda m, args: batch_sizes.append(len(args[0])))
    try:
        mcd.sample_probs(torch.rand(100, 3, 8, 8))
    finally:
        handle.remove()
    assert batch_sizes == [500, 500, 200]  # 512 // 100 = 5 samples per forward


def test_input_gradient_flows_and_parameters_get_no_grad(small_cnn, x):
    mcd = MCDropout(small_cnn(), samples=4, generator=0)
    x_in = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(mcd(x_in), torch.arange(5)), x_in)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert all(p.grad is None for p in mcd.parameters())


def _dropout_outputs(layer: nn.Module, x: torch.Tensor, samples: int) -> torch.Tensor:
    """What `layer` hands on under MCDropout, captured at the Identity that follows it."""
    model = nn.Sequential(layer, nn.Identity(), nn.Flatten())
    seen: list[torch.Tensor] = []
    model[1].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    MCDropout(model, samples=samples, generator=0).sample_probs(x)
    return torch.cat(seen)


def test_dropout_rate_and_scaling():
    masked = _dropout_outputs(nn.Dropout(0.25), torch.ones(50, 200), samples=20)
    kept = masked != 0
    assert masked.shape == (20 * 50, 200)
    assert abs(kept.double().mean().item() - 0.75) < 0.01
    torch.testing.assert_close(masked[kept], torch.full_like(masked[kept], 1 / 0.75))


def test_feature_dropout_drops_whole_channels():
    out = _dropout_outputs(nn.Dropout2d(0.5), torch.ones(8, 4, 3, 3), samples=10)
    per_channel = out.flatten(2)  # (80, 4, 9)
    assert per_channel.shape == (80, 4, 9)
    assert bool((per_channel.amax(-1) == per_channel.amin(-1)).all())
    assert 0.35 < (per_channel[..., 0] == 0).double().mean().item() < 0.65


def test_alpha_dropout_keeps_zero_mean_unit_variance_like_torch():
    x = torch.randn(400, 250, generator=torch.Generator().manual_seed(0))
    ours = _dropout_outputs(nn.AlphaDropout(0.2), x, samples=2)
    torch.manual_seed(0)  # torch's masks come from the global RNG: not from the test order
    theirs = F.alpha_dropout(x.repeat(2, 1), p=0.2, training=True)
    assert (ours - x.repeat(2, 1)).abs().max() > 0.1  # something was dropped
    assert abs(ours.mean().item() - theirs.mean().item()) < 0.02
    assert abs(ours.std().item() - theirs.std().item()) < 0.02
    # Dropped units all land on one value (SELU saturation after the affine map), as in torch.
    saturation, p = 1.7580993408473766, 0.2
    dropped_value = -saturation * (1 - p) / ((saturation**2 * p + 1) * (1 - p)) ** 0.5
    for out in (ours, theirs):
        fraction = ((out - dropped_value).abs() < 1e-5).double().mean().item()
        assert abs(fraction - p) < 0.01


def test_p_one_drops_everything():
    model = nn.Sequential(nn.Dropout(1.0), nn.Linear(3, 2))
    probs = MCDropout(model, samples=2, generator=0).sample_probs(torch.randn(4, 3))
    expected = F.softmax(model[1].bias, dim=-1).expand(2, 4, 2)
    torch.testing.assert_close(probs, expected)


def test_model_without_active_dropout_is_rejected():
    with pytest.raises(ValueError, match=r"dropout layer with p > 0.*found no dropout layer"):
        MCDropout(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match=r"found 0 \(p=0.0\)"):
        MCDropout(nn.Sequential(nn.Dropout(0.0), nn.Linear(3, 2)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"samples": 0}, ValueError, "samples must be an int >= 1; got 0"),
        ({"samples": 2.5}, TypeError, "samples must be an int >= 1; got 2.5"),
        ({"max_batch": 0}, ValueError, "max_batch must be an int >= 1; got 0"),
        ({"generator": "seed"}, TypeError, "generator must be None, an int seed or a torch"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        MCDropout(nn.Sequential(nn.Dropout(0.5)), **kwargs)


def test_all_dropout_layer_kinds_are_driven():
    layers = [cls(0.5) for cls in DROPOUT_LAYERS]
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * 3 * 3 * 3, 2))
    assert MCDropout(model).dropout_layers() == layers


@pytest.mark.gpu
def test_cuda_masks_reproducible_and_chunking_invariant(small_cnn):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; torch.cuda.is_available() is False")
    model = small_cnn().cuda()
    x = torch.rand(5, 3, 8, 8, device="cuda")
    a = MCDropout(model, 6, generator=3, max_batch=10_000).sample_probs(x)
    b = MCDropout(model, 6, generator=3, max_batch=5).sample_probs(x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert (a[0] - a[1]).abs().max() > 1e-5
