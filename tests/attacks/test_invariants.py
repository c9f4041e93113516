"""Invariants every attack keeps, over random shapes, eps, bounds and norms (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from attacks import fgsm, pgd


class TinyNet(nn.Module):
    """Conv + BatchNorm + Dropout, so eval mode and buffers matter."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.head = nn.LazyLinear(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.norm(self.conv(x)))).flatten(1))


def _net(channels: int, size: int, classes: int, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    net = TinyNet(channels, classes)
    net(torch.zeros(2, channels, size, size))  # materialise the lazy layer
    net = net.to(dtype)
    with torch.no_grad():  # non-trivial running statistics
        net.norm.running_mean.uniform_(-0.1, 0.1)
        net.norm.running_var.uniform_(0.5, 1.5)
    return net


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 6),
        "channels": st.integers(1, 3),
        "size": st.integers(3, 7),
        "classes": st.integers(3, 6),
        "eps": st.floats(0.0, 2.0),
        "low": st.floats(-1.0, 0.5),
        "width": st.floats(0.1, 3.0),
        "norm": st.sampled_from(["linf", "l2"]),
        "loss": st.sampled_from(["ce", "margin", "dlr"]),
        "steps": st.integers(1, 4),
        "restarts": st.integers(1, 2),
        "early_stop": st.booleans(),
        "targeted": st.booleans(),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
        "seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_pgd_invariants(case: dict) -> None:
    dtype, bounds = case["dtype"], (case["low"], case["low"] + case["width"])
    net = _net(case["channels"], case["size"], case["classes"], dtype)
    net.train()
    net.drop.eval()  # a mixed mode, which a plain model.train(flag) restore would lose
    modes = {name: m.training for name, m in net.named_modules()}
    before = _state(net)
    generator = torch.Generator().manual_seed(case["seed"])
    shape = (case["batch"], case["channels"], case["size"], case["size"])
    x = bounds[0] + case["width"] * torch.rand(shape, generator=generator, dtype=dtype)
    y = torch.randint(0, case["classes"], (case["batch"],), generator=generator)

    x_adv = pgd(
        net,
        x,
        y,
        case["eps"],
        norm=case["norm"],
        loss=case["loss"],
        steps=case["steps"],
        restarts=case["restarts"],
        early_stop=case["early_stop"],
        targeted=case["targeted"],
        bounds=bounds,
        generator=generator,
    )

    assert x_adv.shape == x.shape and x_adv.dtype == dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if case["norm"] == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= case["eps"] * (1 + 1e-5) + 1e-6
    # Compare in the tensor's dtype: a float64 bound may not be representable in float32.
    low, high = (torch.tensor(b, dtype=dtype) for b in bounds)
    assert bool((x_adv >= low).all()) and bool((x_adv <= high).all())
    after = _state(net)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.grad is None for p in net.parameters())
    assert {name: m.training for name, m in net.named_modules()} == modes


@settings(max_examples=20, deadline=None)
@given(
    eps=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_fgsm_is_one_signed_step_of_exactly_eps(eps: float, seed: int, dtype: torch.dtype) -> None:
    net = _net(1, 5, 4, dtype).eval()
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, 5, 5, generator=generator, dtype=dtype)
    y = torch.randint(0, 4, (4,), generator=generator)
    x_adv = fgsm(net, x, y, eps)
    # Every coordinate moved by exactly eps, by zero (a zero gradient), or to a bound.
    step = (x_adv - x).abs()
    at_bound = (x_adv == 0.0) | (x_adv == 1.0)
    exact = torch.isclose(step, torch.tensor(eps, dtype=dtype), atol=1e-6) | (step == 0)
    assert bool((exact | at_bound).all())


def test_attacks_work_under_no_grad_and_inference_mode(digits_model, digits_split) -> None:
    x, y = digits_split["x_test"][:32], digits_split["y_test"][:32]
    expected = pgd(digits_model, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        in_no_grad = pgd(digits_model, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        in_inference = pgd(digits_model, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(in_no_grad, expected) and torch.equal(in_inference, expected)
    assert not torch.equal(expected, x)


def test_same_generator_seed_same_result_and_different_seed_differs(digits_model, digits_split):
    x, y = digits_split["x_test"][:32], digits_split["y_test"][:32]

    def run(seed: int) -> torch.Tensor:
        return pgd(digits_model, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


@pytest.mark.gpu
def test_pgd_keeps_cuda_device_and_dtype(digits_model, digits_split) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; none is available on this machine")
    model = digits_model.to("cuda")
    try:
        x = digits_split["x_test"][:64].cuda()
        y = digits_split["y_test"][:64].cuda()
        x_adv = pgd(model, x, y, 0.1, generator=torch.Generator(device="cuda").manual_seed(0))
        assert x_adv.device.type == "cuda" and x_adv.dtype == x.dtype
        assert float((x_adv - x).abs().max()) <= 0.1 + 1e-6
        # A CPU generator drives a CUDA attack too (draws move to the input's device).
        pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    finally:
        digits_model.to("cpu")
