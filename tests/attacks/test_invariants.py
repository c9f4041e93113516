"""Invariants every attack keeps, over random shapes, eps, bounds and norms (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attacks import fgsm, pgd
from tests.attacks.models import (
    assert_within_budget,
    attack_cases,
    case_inputs,
    expects_lab_warnings,
    tiny_net,
)


@expects_lab_warnings
@settings(max_examples=40, deadline=None)
@given(case=attack_cases)
def test_pgd_invariants(case: dict) -> None:
    inputs = case_inputs(case)
    net, x, y, bounds, generator = (inputs.net, inputs.x, inputs.y, inputs.bounds, inputs.generator)

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

    assert_within_budget(x, x_adv, case["eps"], case["norm"], bounds)
    inputs.untouched.check()


@settings(max_examples=20, deadline=None)
@given(
    eps=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_fgsm_is_one_signed_step_of_exactly_eps(eps: float, seed: int, dtype: torch.dtype) -> None:
    net = tiny_net(1, 5, 4, dtype).eval()
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
