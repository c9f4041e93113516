"""Speed of the uncertainty heads: batched / vectorised paths against plain Python loops.

Run with `pytest benchmarks/test_uncertainty_speed.py --benchmark-only`. Each comparison is one
pytest-benchmark group (the table's parenthesised numbers are the ratios within the run); the
speedup is the loop's median time over the batched one's. CUDA variants skip without a GPU.
Nothing here asserts on time: the asserts only check that both variants compute the same thing.
Each variant runs 1 warm-up + 3 timed rounds (`pedantic`) to keep a CPU run to about a minute.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uncertainty import DeepEnsemble, MCDropout

BATCH = 256
SAMPLES = 32
MEMBERS = 5
TIMING = {"rounds": 3, "warmup_rounds": 1, "iterations": 1}


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; torch.cuda.is_available() is False")
    return torch.device(name)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _small_cnn(seed: int) -> nn.Module:
    """A CIFAR-sized (3x32x32) CNN with BatchNorm and two dropout layers."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(16 * 8 * 8, 128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, 10),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _looped_mc_dropout(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The usual hand-written MC dropout: dropout layers in train mode, T separate calls."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
    try:
        return torch.stack([model(x).softmax(-1) for _ in range(SAMPLES)])
    finally:
        model.eval()


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("variant", ["batched-default", "batched-one-pass", "loop"])
def test_mc_dropout_t32(benchmark, device_name, variant):
    """batched-default: MCDropout's own row budget (512 rows on CPU, 4096 on GPU);
    batched-one-pass: all T x B rows in one forward; loop: T separate calls."""
    device = _device(device_name)
    benchmark.group = f"mc_dropout T={SAMPLES} B={BATCH} {device_name}"
    model = _small_cnn(0).to(device)
    x = torch.rand(BATCH, 3, 32, 32, device=device)
    max_batch = SAMPLES * BATCH if variant == "batched-one-pass" else None
    mcd = MCDropout(model, samples=SAMPLES, generator=0, max_batch=max_batch)

    def run() -> torch.Tensor:
        with torch.no_grad():
            out = _looped_mc_dropout(model, x) if variant == "loop" else mcd.sample_probs(x)
        _sync(device)
        return out

    probs = benchmark.pedantic(run, **TIMING)
    assert probs.shape == (SAMPLES, BATCH, 10)
    assert (probs[0] - probs[1]).abs().max() > 0  # dropout really sampled
    rows = mcd.rows_per_forward(device) // BATCH * BATCH if variant != "loop" else BATCH
    benchmark.extra_info["rows_per_forward"] = min(rows, SAMPLES * BATCH)


@pytest.mark.parametrize("device_name", DEVICES)
@pytest.mark.parametrize("variant", ["always", "never"], ids=["vectorised", "loop"])
def test_deep_ensemble_5_members(benchmark, device_name, variant):
    device = _device(device_name)
    benchmark.group = f"deep_ensemble M={MEMBERS} B={BATCH} {device_name}"
    members = [_small_cnn(seed).to(device) for seed in range(MEMBERS)]
    ensemble = DeepEnsemble(members, vectorize=variant)
    x = torch.rand(BATCH, 3, 32, 32, device=device)

    def run() -> torch.Tensor:
        with torch.no_grad():
            out = ensemble.sample_probs(x)
        _sync(device)
        return out

    probs = benchmark.pedantic(run, **TIMING)
    with torch.no_grad():
        reference = DeepEnsemble(members, vectorize="never").sample_probs(x)
    torch.testing.assert_close(probs, reference, rtol=1e-4, atol=1e-5)
