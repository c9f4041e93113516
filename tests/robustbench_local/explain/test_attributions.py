"""attribution_maps and integrated_gradients: known answers, completeness, the uncertainty
wrappers, the model left as it was, and the error messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.explain import attribution_maps, integrated_gradients
from tests.attacks.models import Untouched, in_mixed_mode, tiny_net
from tests.robustbench_local.explain.models import ConvGap, OnePixel, no_conv_net, smooth_net
from uncertainty import DeepEnsemble, MCDropout

METHODS = ["saliency", "integrated_gradients", "gradcam"]


def _batch(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator, dtype=dtype)
    y = torch.randint(0, 4, (shape[0],), generator=generator)
    return x, y


# --- known answers -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_a_model_that_reads_one_pixel_gets_all_of_its_attribution_there(method: str) -> None:
    model = OnePixel(channel=1, row=2, col=5)
    x, _ = _batch((5, 3, 6, 7))
    x[:, 1, 2, 5] = torch.linspace(0.1, 0.9, 5, dtype=torch.float64)  # never the baseline 0
    target = torch.tensor([0, 1, 2, 0, 2])
    maps = attribution_maps(model, x, target, method=method)
    assert maps.shape == (5, 6, 7)
    assert bool((maps[:, 2, 5] > 0).all())
    elsewhere = maps.clone()
    elsewhere[:, 2, 5] = 0.0
    assert torch.equal(elsewhere, torch.zeros_like(elsewhere))  # exactly: their gradient is 0


def test_saliency_of_one_pixel_is_the_derivative() -> None:
    model = OnePixel(channel=0, row=0, col=0)
    x, _ = _batch((3, 1, 4, 4))
    target = torch.tensor([0, 1, 2])
    pixel = x[:, 0, 0, 0]
    s = torch.sigmoid(4.0 * (pixel - 0.5))
    expected = (model.weight.detach()[target] * 4.0 * s * (1 - s)).abs()
    maps = attribution_maps(model, x, target, method="saliency")
    torch.testing.assert_close(maps[:, 0, 0], expected, rtol=1e-12, atol=0)


def test_integrated_gradients_of_one_pixel_is_the_score_difference() -> None:
    # The whole path runs through one pixel, so its attribution is |f(x) - f(0)|, up to the
    # quadrature: captum keeps its Gauss-Legendre weights in float32 (relative error ~1e-8).
    model = OnePixel(channel=0, row=1, col=1)
    x, _ = _batch((4, 1, 3, 3))
    target = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        rows = torch.arange(4)
        expected = (model(x)[rows, target] - model(torch.zeros_like(x))[rows, target]).abs()
    maps = attribution_maps(model, x, target, method="integrated_gradients", n_steps=64)
    torch.testing.assert_close(maps[:, 1, 1], expected, rtol=1e-6, atol=1e-12)


def test_integrated_gradients_complete() -> None:
    # Completeness: sum of attributions = f(x) - f(baseline), up to captum's delta, which
    # is tiny for a smooth network in float64.
    model = smooth_net(seed=1)
    x, target = _batch((6, 1, 8, 8))
    attributions, delta = integrated_gradients(model, x, target, n_steps=64)
    assert attributions.shape == x.shape and delta.shape == (6,)
    with torch.no_grad():
        rows = torch.arange(6)
        gap = model(x)[rows, target] - model(torch.zeros_like(x))[rows, target]
    total = attributions.flatten(1).sum(dim=1)
    torch.testing.assert_close(total - gap, delta, rtol=0, atol=1e-10)
    assert float(delta.abs().max()) < 1e-7 * max(1.0, float(gap.abs().max()))


def test_integrated_gradients_from_another_baseline_complete() -> None:
    model = smooth_net(seed=2)
    x, target = _batch((3, 1, 8, 8))
    attributions, delta = integrated_gradients(model, x, target, baseline=0.5, n_steps=64)
    with torch.no_grad():
        rows = torch.arange(3)
        gap = model(x)[rows, target] - model(torch.full_like(x, 0.5))[rows, target]
    torch.testing.assert_close(attributions.flatten(1).sum(dim=1), gap, rtol=0, atol=1e-8)
    assert float(delta.abs().max()) < 1e-7


def test_gradcam_on_global_average_pooling_is_cam() -> None:
    torch.manual_seed(0)
    model = ConvGap().double()
    x, target = _batch((4, 2, 5, 6))
    with torch.no_grad():
        maps_per_channel = model.conv(x)  # (B, 3, 5, 6)
        weight = model.head.weight[target]  # (B, 3)
        expected = torch.relu((weight[:, :, None, None] * maps_per_channel).sum(1)) / 30.0
    cam = attribution_maps(model, x, target, method="gradcam")
    torch.testing.assert_close(cam, expected, rtol=1e-10, atol=1e-12)


def test_gradcam_upsamples_a_coarse_layer_to_the_input_size() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4)
    ).double()
    x, target = _batch((2, 3, 9, 12))
    model(x)  # build the lazy layer
    cam = attribution_maps(model, x, target, method="gradcam")
    assert cam.shape == (2, 9, 12) and cam.dtype == x.dtype
    assert bool((cam >= 0).all())
    nearest = attribution_maps(model, x, target, method="gradcam", interpolate_mode="nearest")
    assert nearest.shape == (2, 9, 12)


def test_gradcam_takes_the_last_conv_unless_told() -> None:
    model = tiny_net(1, 8, 4, torch.float64)
    x, target = _batch((3, 1, 8, 8))
    default = attribution_maps(model, x, target, method="gradcam")
    explicit = attribution_maps(model, x, target, method="gradcam", layer=model.conv)
    assert torch.equal(default, explicit)
    after_norm = attribution_maps(model, x, target, method="gradcam", layer=model.norm)
    assert after_norm.shape == (3, 8, 8)


def test_gradcam_without_a_conv_layer_says_so() -> None:
    x, target = _batch((2, 1, 8, 8), dtype=torch.float32)
    with pytest.raises(ValueError, match=r"gradcam.*no nn\.Conv2d.*layer="):
        attribution_maps(no_conv_net(), x, target, method="gradcam")
    ensemble = DeepEnsemble([tiny_net(1, 8, 4, torch.float32), no_conv_net()])
    with pytest.raises(ValueError, match=r"ensemble member 1: .*no nn\.Conv2d"):
        attribution_maps(ensemble, x, target, method="gradcam")


# --- uncertainty wrappers ----------------------------------------------------------------


def _saliency_by_hand(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inputs = x.clone().requires_grad_(True)
    score = model(inputs)[torch.arange(len(x)), target].sum()
    (grad,) = torch.autograd.grad(score, inputs)
    return grad.abs().amax(dim=1)


@pytest.mark.parametrize("vectorize", ["never", "always"])
def test_ensemble_saliency_is_the_gradient_of_the_log_predictive_mean(vectorize: str) -> None:
    ensemble = DeepEnsemble([smooth_net(seed) for seed in range(3)], vectorize=vectorize)
    x, target = _batch((4, 1, 8, 8))
    maps = attribution_maps(ensemble, x, target)
    torch.testing.assert_close(maps, _saliency_by_hand(ensemble, x, target), rtol=1e-10, atol=0)


def test_ensemble_integrated_gradients_complete_on_the_log_predictive_mean() -> None:
    ensemble = DeepEnsemble([smooth_net(seed) for seed in range(3)])
    x, target = _batch((3, 1, 8, 8))
    attributions, delta = integrated_gradients(ensemble, x, target, n_steps=64)
    with torch.no_grad():
        rows = torch.arange(3)
        gap = ensemble(x)[rows, target] - ensemble(torch.zeros_like(x))[rows, target]
    torch.testing.assert_close(attributions.flatten(1).sum(dim=1), gap, rtol=0, atol=1e-8)
    assert float(delta.abs().max()) < 1e-7


def test_ensemble_gradcam_is_the_probability_weighted_mean_of_the_members_maps() -> None:
    # d log mean_m p_m / d A_m = w_m d log p_m / d A_m with w_m = p_m / (M mean p) >= 0, and
    # relu(w z) = w relu(z): the ensemble's map is sum_m w_m GradCAM_m(log p_m), sum w_m = 1.
    members = [smooth_net(seed) for seed in range(3)]
    ensemble = DeepEnsemble(members)
    x, target = _batch((3, 1, 8, 8))
    total = attribution_maps(ensemble, x, target, method="gradcam")
    parts = [attribution_maps(ensemble, x, target, method="gradcam", layer=m.conv) for m in members]
    torch.testing.assert_close(total, sum(parts), rtol=1e-12, atol=1e-15)
    with torch.no_grad():
        probs = torch.stack([m(x).softmax(1)[torch.arange(3), target] for m in members])
    weights = probs / probs.sum(0)  # (M, B)
    own = [
        attribution_maps(nn.Sequential(m, nn.LogSoftmax(dim=1)), x, target, method="gradcam")
        for m in members
    ]
    expected = sum(w[:, None, None] * o for w, o in zip(weights, own, strict=True))
    torch.testing.assert_close(total, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_mc_dropout_maps_are_repeatable_and_leave_the_wrapper_alone(method: str) -> None:
    net = smooth_net(seed=3, dropout=0.3)
    wrapper, twin = MCDropout(net, samples=6, generator=7), MCDropout(net, samples=6, generator=7)
    x, target = _batch((4, 1, 8, 8))
    first = attribution_maps(wrapper, x, target, method=method)
    second = attribution_maps(wrapper, x, target, method=method)
    assert first.shape == (4, 8, 8) and bool((first >= 0).all())
    assert torch.equal(first, second)
    other_seed = attribution_maps(wrapper, x, target, method=method, seed=1)
    assert not torch.equal(first, other_seed)  # the masks do matter
    with torch.no_grad():  # the wrapper's own seed source did not move
        assert torch.equal(wrapper(x), twin(x))


def test_mc_dropout_saliency_is_the_gradient_with_the_seeded_masks() -> None:
    net = smooth_net(seed=3, dropout=0.3)
    x, target = _batch((4, 1, 8, 8))
    maps = attribution_maps(MCDropout(net, samples=5), x, target, seed=11)
    reference = MCDropout(net, samples=5, generator=11)
    torch.testing.assert_close(maps, _saliency_by_hand(reference, x, target), rtol=1e-10, atol=0)


def test_mc_dropout_integrated_gradients_integrate_one_network() -> None:
    # Every path point sees the same masks, so completeness holds as for a plain network;
    # fresh masks per point would leave a delta of the order of the scores themselves.
    net = smooth_net(seed=4, dropout=0.3)
    wrapper = MCDropout(net, samples=5)
    x, target = _batch((3, 1, 8, 8))
    attributions, delta = integrated_gradients(wrapper, x, target, n_steps=64, seed=5)
    fixed = MCDropout(net, samples=5, generator=5)
    with torch.no_grad():
        rows = torch.arange(3)
        at_x = fixed(x)[rows, target]
        at_zero = MCDropout(net, samples=5, generator=5)(torch.zeros_like(x))[rows, target]
    torch.testing.assert_close(attributions.flatten(1).sum(1), at_x - at_zero, rtol=0, atol=1e-8)
    assert float(delta.abs().max()) < 1e-7


def test_an_ensemble_of_mc_dropout_members_works() -> None:
    members = [MCDropout(smooth_net(seed, dropout=0.3), samples=3) for seed in range(2)]
    ensemble = DeepEnsemble(members)
    x, target = _batch((2, 1, 8, 8))
    for method in METHODS:
        first = attribution_maps(ensemble, x, target, method=method)
        assert first.shape == (2, 8, 8)
        assert torch.equal(first, attribution_maps(ensemble, x, target, method=method))


# --- the model is left as it was ---------------------------------------------------------


def _wrapped(kind: str) -> tuple[nn.Module, list[nn.Module]]:
    nets = [in_mixed_mode(tiny_net(1, 8, 4, torch.float64)) for _ in range(2)]
    nets[0].conv.bias.requires_grad_(False)  # a frozen parameter stays frozen
    if kind == "plain":
        return nets[0], nets[:1]
    if kind == "ensemble":
        return DeepEnsemble(nets), nets
    return MCDropout(nets[0], samples=3), nets[:1]


@pytest.mark.parametrize("kind", ["plain", "ensemble", "mc_dropout"])
@pytest.mark.parametrize("method", METHODS)
def test_modes_parameters_and_grads_are_left_as_they_were(kind: str, method: str) -> None:
    model, nets = _wrapped(kind)
    untouched = [Untouched(net) for net in nets]
    wrapper_modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    x, target = _batch((3, 1, 8, 8))
    maps = attribution_maps(model, x, target, method=method)
    assert maps.shape == (3, 8, 8) and not maps.requires_grad
    for check in untouched:
        check.check()  # parameters, buffers, training flags, no .grad
    assert [m.training for m in model.modules()] == wrapper_modes
    assert [p.requires_grad for p in model.parameters()] == flags


def test_eval_mode_is_what_runs() -> None:
    # BatchNorm in train mode would use the batch's statistics; the map must not.
    net = tiny_net(1, 8, 4, torch.float64)
    x, target = _batch((3, 1, 8, 8))
    in_eval = attribution_maps(net.eval(), x, target)
    in_train = attribution_maps(net.train(), x, target)
    assert torch.equal(in_eval, in_train)
    assert net.training


def test_works_under_no_grad_and_inference_mode() -> None:
    model = smooth_net(seed=0)
    x, target = _batch((2, 1, 8, 8))
    expected = attribution_maps(model, x, target, method="integrated_gradients")
    with torch.inference_mode():
        x_inf, target_inf = x.clone(), target.clone()
        got = attribution_maps(model, x_inf, target_inf, method="integrated_gradients")
    assert torch.equal(got, expected)
    with torch.no_grad():
        assert torch.equal(
            attribution_maps(model, x, target, method="gradcam"),
            attribution_maps(model, x, target, method="gradcam"),
        )


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"model": "net"}, TypeError, r"model must be a torch\.nn\.Module; got str"),
        ({"x": [[0.0]]}, TypeError, r"x must be a torch\.Tensor"),
        ({"x": torch.zeros(2, 8, 8)}, ValueError, r"x must have shape \(B, C, H, W\).*\(2, 8, 8\)"),
        ({"x": torch.zeros(2, 1, 8, 8, dtype=torch.long)}, TypeError, r"x must be a float.*int64"),
        ({"x": torch.full((2, 1, 8, 8), float("nan"))}, ValueError, r"x must be finite; got 128"),
        ({"target": [0, 1]}, TypeError, r"target must be a torch\.Tensor.*got list"),
        ({"target": torch.tensor([0.0, 1.0])}, TypeError, r"target .*integer.*float32"),
        ({"target": torch.tensor([0, 1, 2])}, ValueError, r"target must have shape \(2,\).*\(3,\)"),
        ({"target": torch.tensor([0, -1])}, ValueError, r"target must hold class indices >= 0"),
        ({"target": torch.tensor([0, 4])}, ValueError, r"target .*\[0, 4\).*4 classes; got max 4"),
        ({"method": "lime"}, ValueError, r"method must be one of 'saliency', .*got 'lime'"),
        ({"n_steps": 10}, TypeError, r"method='saliency' has no option 'n_steps'; its options"),
        ({"method": "integrated_gradients", "n_steps": 0}, ValueError, r"n_steps must be .*>= 1"),
        ({"method": "integrated_gradients", "baseline": "black"}, TypeError, r"baseline must"),
        (
            {"method": "integrated_gradients", "baseline": torch.zeros(3, 3)},
            ValueError,
            r"baseline must broadcast to x's shape \(2, 1, 8, 8\); got \(3, 3\)",
        ),
        ({"method": "gradcam", "interpolate_mode": "linear"}, ValueError, r"interpolate_mode"),
        ({"method": "gradcam", "layer": "conv"}, TypeError, r"layer must be an nn\.Module"),
        ({"layer": nn.Conv2d(1, 1, 1)}, ValueError, r"layer is used by method='gradcam' only"),
        (
            {"method": "gradcam", "layer": nn.Conv2d(1, 1, 1)},
            ValueError,
            r"layer must be a submodule of the model; got Conv2d",
        ),
        ({"seed": -1}, ValueError, r"seed must be an int >= 0; got -1"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, error: type, pattern: str) -> None:
    arguments = {
        "model": tiny_net(1, 8, 4, torch.float32),
        "x": torch.rand(2, 1, 8, 8),
        "target": torch.tensor([0, 1]),
    }
    arguments.update({k: kwargs.pop(k) for k in ("model", "x", "target") if k in kwargs})
    with pytest.raises(error, match=pattern):
        attribution_maps(arguments["model"], arguments["x"], arguments["target"], **kwargs)


def test_a_model_that_does_not_return_logits_is_named() -> None:
    model = nn.Sequential(nn.Flatten(0))
    with pytest.raises(ValueError, match=r"model output must be logits of shape \(2, K\)"):
        attribution_maps(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
