"""Shared helpers for the attack tests: small models, a call recorder, hypothesis cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import strategies as st
from torch import nn


class DigitsCNN(nn.Module):
    """A tiny CNN for 1x8x8 digits; trains to ~97% test accuracy in a second or two."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def linear_model(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """logits = flatten(x) @ weight.T + bias, with the given (K, D) weight and (K,) bias."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0]))
    model = model.to(weight.dtype)
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.copy_(bias)
    return model


def staircase(norm: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """A binary linear model on which PGD's every iterate is known in advance.

    margin = logit_1 - logit_0 = sum(x) - 2. Under CE with label 0 the input gradient is
    p_1 * (1, 1, 1, 1): its sign (linf) and direction (l2) do not depend on rounding. With
    eps 0.2 (linf) or 0.4 (l2), 10 steps and the default step size, each step adds 0.2 to
    the margin until the ball's edge caps the gain at 0.8 after 4 steps. Sample group j
    (j = 0..5, 4 samples each) starts at margin -0.1 - 0.2 j: groups 0..3 are first fooled
    at iterate j + 1, with margin +0.1; groups 4 and 5 never are (best margins -0.1, -0.3).
    Every margin stays 0.1 away from the decision boundary, far beyond float rounding.

    Returns the model, x (24, 4), y, eps and the known answer of first_fooling.
    """
    weight = torch.tensor([[0.0] * 4, [1.0] * 4], dtype=torch.float64)
    model = linear_model(weight, torch.tensor([0.0, -2.0], dtype=torch.float64))
    groups = torch.arange(6).repeat_interleave(4)
    x = (0.5 - (0.1 + 0.2 * groups.double()) / 4)[:, None].expand(24, 4).clone()
    y = torch.zeros(24, dtype=torch.long)
    eps = 0.2 if norm == "linf" else 0.4
    # Each step moves every coordinate by 0.05; the fooling iterate of group j is x + 0.05 (j+1),
    # the best of groups 4 and 5 the ball's edge x + 0.2.
    moves = (0.05 * (groups + 1).clamp(max=4).double())[:, None]
    return model, x, y, eps, x + moves


class Recorder(nn.Module):
    """Wraps a model and records every batch it is called on; it declares what the model
    declares about being stochastic (see `attacks.stochastic`), so it adds no probe calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen: list[torch.Tensor] = []

    @property
    def stochastic(self) -> bool | None:
        return getattr(self.model, "stochastic", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.model(x)


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


def tiny_net(channels: int, size: int, classes: int, dtype: torch.dtype) -> nn.Module:
    """A seeded TinyNet with its lazy layer built and non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    net = TinyNet(channels, classes)
    net(torch.zeros(2, channels, size, size))  # materialise the lazy layer
    net = net.to(dtype)
    with torch.no_grad():  # non-trivial running statistics
        net.norm.running_mean.uniform_(-0.1, 0.1)
        net.norm.running_var.uniform_(0.5, 1.5)
    return net


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer, to check an attack left them untouched."""
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def expects_lab_warnings(test):
    """For property tests whose cases draw eps up to the whole input range and random
    targets on purpose: the lab warnings (eps in 0..255 units, targets the model already
    predicts) are expected there and would only bury the others."""
    test = pytest.mark.filterwarnings("ignore:eps=.*:UserWarning")(test)
    return pytest.mark.filterwarnings("ignore:targeted=True, but:UserWarning")(test)


# Random shapes, budgets and options for the property tests of every attack.
attack_cases = st.fixed_dictionaries(
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


def in_mixed_mode(net: nn.Module) -> nn.Module:
    """Train mode with the dropout layer in eval: a state a plain train(flag) would lose."""
    net.train()
    net.drop.eval()
    return net


class Untouched:
    """Records a model's parameters, buffers and training flags; `check` asserts an attack
    left all of them as they were and put no .grad on any parameter."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.modes = {name: m.training for name, m in net.named_modules()}
        self.state = state_of(net)

    def check(self) -> None:
        after = state_of(self.net)
        assert all(torch.equal(self.state[name], after[name]) for name in self.state)
        assert all(p.grad is None for p in self.net.parameters())
        assert {name: m.training for name, m in self.net.named_modules()} == self.modes


def assert_within_budget(
    x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str, bounds: tuple[float, float]
) -> None:
    """x_adv keeps x's shape, dtype and device, needs no grad, stays in the ball and bounds."""
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-5) + 1e-6
    # Compare in the tensor's dtype: a float64 bound may not be representable in float32.
    low, high = (torch.tensor(b, dtype=x.dtype) for b in bounds)
    assert bool((x_adv >= low).all()) and bool((x_adv <= high).all())


# How much weaker than a peer's attack ours may look on the same model and budget
# (robust accuracy, absolute): 0.01 leaves room for ties in random starts, nothing more.
PEER_TOLERANCE = 0.01


def robust_mask(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the model still predicts y on x_adv."""
    with torch.no_grad():
        return model(x_adv).argmax(dim=1) == y


def robust_accuracy(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of x_adv the model still classifies as y."""
    return float(robust_mask(model, x_adv, y).float().mean())


@dataclass
class CaseInputs:
    """What a property test of an attack needs from one hypothesis `attack_cases` draw."""

    net: nn.Module
    untouched: Untouched
    x: torch.Tensor
    y: torch.Tensor
    bounds: tuple[float, float]
    generator: torch.Generator


def case_inputs(case: dict) -> CaseInputs:
    """A TinyNet in mixed mode, and a seeded batch drawn inside the case's bounds."""
    dtype, bounds = case["dtype"], (case["low"], case["low"] + case["width"])
    net = in_mixed_mode(tiny_net(case["channels"], case["size"], case["classes"], dtype))
    untouched = Untouched(net)
    generator = torch.Generator().manual_seed(case["seed"])
    shape = (case["batch"], case["channels"], case["size"], case["size"])
    x = bounds[0] + case["width"] * torch.rand(shape, generator=generator, dtype=dtype)
    y = torch.randint(0, case["classes"], (case["batch"],), generator=generator)
    return CaseInputs(net, untouched, x, y, bounds, generator)
