"""Gradient masking end to end: a quantising input layer fools plain PGD, not the checks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_local.checkpoints import save_checkpoint
from robustbench_local.cli import main
from robustbench_local.training import default_spec, load_or_train

MASKED_MODULE = '''
import torch
from torch import nn

from robustbench_local.zoo import create_model


class Quantise(nn.Module):
    """Rounds inputs to five grey levels: its gradient is zero almost everywhere."""

    def forward(self, x):
        return torch.round(x * 4) / 4


def build():
    return nn.Sequential(Quantise(), create_model("digits-cnn"))
'''

CONFIG = """
[run]
name = "masked"
dataset = "digits"
n_examples = 120

[[models]]
name = "quantised"
factory = "masked_model:build"
checkpoint = "masked.safetensors"

[[attacks]]
name = "pgd"
steps = 10

[[attacks]]
name = "square"
n_queries = 300

[sweep]
eps = [0.0, 0.1, 0.2]
"""


@pytest.fixture
def masked_run(tmp_path: Path, monkeypatch) -> dict:
    trained, _, _ = load_or_train(
        default_spec("digits-cnn", "digits", "standard", epochs=6), cache_dir=tmp_path / "cache"
    )
    (tmp_path / "masked_model.py").write_text(textwrap.dedent(MASKED_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    from masked_model import Quantise  # the module the factory will import

    save_checkpoint(nn.Sequential(Quantise(), trained), tmp_path / "masked.safetensors")
    (tmp_path / "masked.toml").write_text(textwrap.dedent(CONFIG))
    assert (
        main(
            [
                "run",
                str(tmp_path / "masked.toml"),
                "--out",
                str(tmp_path / "run"),
                "--device",
                "cpu",
                "--quiet",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    return json.loads((tmp_path / "run" / "summary.json").read_text())


def test_masked_gradients_inflate_pgd_and_the_checks_say_so(masked_run: dict) -> None:
    accuracy = {(r["attack"], r["eps"]): r["accuracy"] for r in masked_run["results"]}
    clean = accuracy[("pgd", 0.0)]
    assert clean > 0.9
    # Plain PGD sees no gradient: it reports the model as (almost) unbreakable...
    assert accuracy[("pgd", 0.2)] > clean - 0.15
    # ...while the gradient-free attack breaks it.
    assert accuracy[("square", 0.2)] < accuracy[("pgd", 0.2)] - 0.3
    warnings = "\n".join(masked_run["warnings"])
    assert "the gradient-free square beats every gradient attack at eps 0.2" in warnings
    assert "input gradient is exactly zero for 100.0% of samples" in warnings
    assert "at eps 1, which covers every input, PGD leaves" in warnings
    diagnostics = masked_run["diagnostics"]["quantised"]
    assert diagnostics["zero_grad_fraction"] == 1.0
    assert diagnostics["large_eps_accuracy"] > 0.5
    report = (Path(masked_run["run"]["config_source"]).parent / "run" / "report.html").read_text()
    assert "the gradient-free square beats every gradient attack" in report


def test_a_healthy_model_raises_no_warning(tmp_path: Path) -> None:
    from robustbench_local.diagnostics import diagnose

    trained, _, _ = load_or_train(
        default_spec("digits-cnn", "digits", "standard", epochs=6), cache_dir=tmp_path / "cache"
    )
    from robustbench_local.datasets import load_tensors

    x, y = load_tensors("digits", "test", n_examples=100)
    values = diagnose(trained, trained, x, y, seed=0, stochastic=False)
    assert values["zero_grad_fraction"] == 0.0 and values["nan_grad_fraction"] == 0.0
    assert values["repeat_max_abs_diff"] == 0.0
    assert values["large_eps_accuracy"] <= values["chance"]


def test_unseeded_randomness_is_flagged() -> None:
    from robustbench_local.diagnostics import diagnose

    class Noisy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x + 0.1 * torch.randn_like(x))

    torch.manual_seed(0)
    model = Noisy()
    values = diagnose(
        model, model, torch.rand(20, 1, 8, 8), torch.arange(20) % 10, seed=0, stochastic=False
    )
    assert values["repeat_max_abs_diff"] > 1e-3
