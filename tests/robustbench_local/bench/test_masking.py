"""Gradient masking end to end: models whose input gradients are useless in different ways
fool plain PGD, not the checks; honest and merely saturated models raise no warning.

The masked models (tests/robustbench_local/bench/masked_models.py) share one trained digits-cnn,
trained once per module. Every threshold asserted here holds with a wide margin (numbers
seen on one CPU in the comments), so another CPU's rounding cannot flip a test.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_local.cli import main
from robustbench_local.zoo.checkpoints import save_checkpoint
from robustbench_local.zoo.training import default_spec, load_or_train
from tests.robustbench_local.bench.masked_models import KINDS, wrap

MASKED = ("fixed", "negated", "rotated", "hashed", "quantised")
HONEST = ("plain", "saturated")
FACTORY = "tests.robustbench_local.bench.masked_models:build"

MODEL = """
[[models]]
name = "{kind}"
factory = "{factory}"
factory_kwargs = {{ kind = "{kind}" }}
checkpoint = "plain.safetensors"
"""

CONFIG = """
[run]
name = "masked"
dataset = "digits"
n_examples = 120
{models}
[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
label = "pgd-10"
steps = 10
{extra}
[sweep]
eps = [0.0, 0.1, 0.2]
"""


def _run(folder: Path, cache: Path, kinds: tuple[str, ...], extra: str = "") -> dict:
    """`rbl run` on the digits with the given masked kinds; returns summary.json."""
    models = "".join(MODEL.format(kind=k, factory=FACTORY) for k in kinds)
    (folder / "masked.toml").write_text(textwrap.dedent(CONFIG.format(models=models, extra=extra)))
    argv = ["run", str(folder / "masked.toml"), "--out", str(folder / "run"), "--device", "cpu"]
    assert main([*argv, "--quiet", "--cache-dir", str(cache)]) == 0
    return json.loads((folder / "run" / "summary.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread (as the shared ``one_thread`` fixture, for the whole module): the
    tiny models run fastest so, above all on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """A standard digits-cnn (6 epochs) and the cache it is in."""
    cache = tmp_path_factory.mktemp("cache")
    model, _, _ = load_or_train(
        default_spec("digits-cnn", "digits", "standard", epochs=6), cache_dir=cache
    )
    return model, cache


@pytest.fixture(scope="module")
def masked_run(trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One run of every kind (five masked, the plain control, the saturated one): fgsm and
    pgd-10 at eps 0, 0.1, 0.2 on 120 digits."""
    model, cache = trained
    folder = tmp_path_factory.mktemp("masked")
    save_checkpoint(wrap(model, "plain"), folder / "plain.safetensors")
    return _run(folder, cache, KINDS), folder


def _accuracy(summary: dict, model: str, attack: str, eps: float) -> float:
    (row,) = [
        r
        for r in summary["results"]
        if r["model"] == model and r["attack"] == attack and r["eps"] == eps
    ]
    return row["accuracy"]


def _warnings_of(summary: dict, model: str) -> list[str]:
    return [w for w in summary["warnings"] if w.startswith(f"{model}: ")]


@pytest.mark.parametrize("kind", MASKED)
def test_masked_gradients_inflate_pgd_and_the_probe_says_so(masked_run, kind: str) -> None:
    summary, _ = masked_run
    assert _accuracy(summary, kind, "pgd-10", 0.0) > 0.9
    # The gradient attacks see no useful gradient: the model looks (almost) unbreakable
    # (0.90-0.98 seen), while the same weights unmasked fall to ~0.08.
    assert _accuracy(summary, kind, "pgd-10", 0.2) > 0.6
    assert _accuracy(summary, "plain", "pgd-10", 0.2) < 0.35
    # The gradient-free probe breaks it on the same samples (0.04-0.18 seen), and says so.
    probe = summary["diagnostics"][kind]["probe"]
    assert probe["eps"] == [0.1, 0.2] and probe["n"] == 100
    assert probe["accuracy"][1] < 0.4
    (comparison,) = [p for p in summary["probes"] if p["model"] == kind and p["eps"] == 0.2]
    assert comparison["probe_only"] > 40 and comparison["attacks"] == ["fgsm", "pgd-10"]
    warnings = _warnings_of(summary, kind)
    assert any(
        "the gradient-free probe (square, 100 queries) leaves" in w and "at eps 0.2" in w
        for w in warnings
    ), warnings
    assert all("remedy:" in w for w in warnings)


@pytest.mark.parametrize("kind", ["negated", "quantised"])
def test_the_large_eps_attack_fails_where_the_gradient_leads_nowhere(masked_run, kind) -> None:
    summary, _ = masked_run
    # 1.0 and 0.98 seen; a working attack leaves 0 of 100.
    assert summary["diagnostics"][kind]["large_eps_accuracy"] > 0.5
    assert any("at eps 1, which covers every input" in w for w in _warnings_of(summary, kind))


def test_a_non_differentiable_layer_is_named(masked_run) -> None:
    summary, _ = masked_run
    assert summary["diagnostics"]["quantised"]["zero_grad_fraction"] == 1.0
    assert any(
        "input gradient is exactly zero for 100.0% of samples" in w
        for w in _warnings_of(summary, "quantised")
    )


@pytest.mark.parametrize("kind", HONEST)
def test_honest_gradients_raise_no_warning(masked_run, kind: str) -> None:
    summary, _ = masked_run
    assert _warnings_of(summary, kind) == []
    diagnostics = summary["diagnostics"][kind]
    assert diagnostics["large_eps_accuracy"] <= 0.03  # 0.0 seen
    assert diagnostics["zero_grad_fraction"] <= 0.01  # a saturated sample may underflow to zero
    assert diagnostics["repeat_grad_rel_diff"] == 0.0


def test_a_saturated_softmax_gets_the_margin_fallback(masked_run) -> None:
    summary, _ = masked_run
    # Logits times 1e4: cross-entropy's input gradient is exactly zero for most samples.
    assert summary["diagnostics"]["saturated"]["saturated_fraction"] > 0.5  # 0.98 seen
    for attack in ("fgsm", "pgd-10"):
        for eps in (0.1, 0.2):
            (row,) = [
                r
                for r in summary["results"]
                if r["model"] == "saturated" and r["attack"] == attack and r["eps"] == eps
            ]
            assert row["margin_fallback"] > 60  # 116-118 of 120 seen
            assert 0 < row["margin_fallback_fooled"] <= row["margin_fallback"]
            assert any("margin fallback" in note for note in row["notes"])
            # With the fallback its rows match the unscaled model's (0.08 vs 0.08 seen).
            plain = _accuracy(summary, "plain", attack, eps)
            assert abs(row["accuracy"] - plain) < 0.15
    plain_rows = [r for r in summary["results"] if r["model"] == "plain" and r["eps"] > 0]
    assert all(r["margin_fallback"] == 0 and r["notes"] == [] for r in plain_rows)
    assert any(n.startswith("saturated / pgd-10: ") for n in summary["notes"])


def test_warnings_reach_the_report_and_the_console(masked_run, capsys) -> None:
    from robustbench_local.cli import _print_table
    from robustbench_local.results.records import Summary

    summary, folder = masked_run
    report = (folder / "run" / "report.html").read_text()
    assert "Warnings: these numbers may overstate robustness" in report
    assert "negated: the gradient-free probe (square, 100 queries) leaves" in report
    assert "margin fallback" in report  # the saturated model's rows
    _print_table(Summary.from_dict(summary))
    console = capsys.readouterr().out
    assert console.count("warning:") == len(summary["warnings"])


def test_the_gradient_free_attack_in_the_config_beats_masked_pgd(trained, tmp_path: Path) -> None:
    model, cache = trained
    save_checkpoint(wrap(model, "plain"), tmp_path / "plain.safetensors")
    square = '\n[[attacks]]\nname = "square"\nn_queries = 300\n'
    summary = _run(tmp_path, cache, ("quantised",), extra=square)
    # Square breaks what PGD cannot move, and the row check says so.
    assert _accuracy(summary, "quantised", "square", 0.2) < (
        _accuracy(summary, "quantised", "pgd-10", 0.2) - 0.3
    )
    assert any(
        "the gradient-free square beats every gradient attack at eps 0.2" in w
        for w in summary["warnings"]
    )


def test_a_healthy_model_passes_the_diagnostics(trained) -> None:
    from robustbench_local.bench.diagnostics import diagnose
    from robustbench_local.zoo.datasets import load_tensors

    model, _ = trained
    x, y = load_tensors("digits", "test", n_examples=100)
    values = diagnose(model, model, x, y, seed=0, stochastic=False, sweep_eps=[0.0, 0.2])
    assert values["zero_grad_fraction"] <= 0.01 and values["nan_grad_fraction"] == 0.0
    assert values["repeat_max_abs_diff"] == 0.0 and values["repeat_grad_rel_diff"] == 0.0
    assert values["large_eps_accuracy"] <= 0.03
    assert values["probe"]["eps"] == [0.2] and len(values["probe"]["robust"][0]) == 100


def test_an_l2_sweep_skips_the_probe_and_says_why() -> None:
    from robustbench_local.bench.diagnostics import diagnose

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 10
    values = diagnose(model, model, x, y, seed=0, stochastic=False, sweep_eps=[0, 1], norm="l2")
    assert "linf only" in values["probe"]["skipped"]


class _Noisy(nn.Module):
    """Noise on the input: outputs and gradients differ between identical calls."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + 0.1 * torch.randn_like(x))


class _RandomBackward(torch.autograd.Function):
    """Identity forward; an unseeded random backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(grad)


class _NoisyGradient(nn.Module):
    """A deterministic forward whose input gradient is random."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(_RandomBackward.apply(x))


def test_unseeded_randomness_is_flagged() -> None:
    from robustbench_local.bench.diagnostics import diagnose

    torch.manual_seed(0)
    x, y = torch.rand(20, 1, 8, 8), torch.arange(20) % 10
    noisy = _Noisy()
    assert diagnose(noisy, noisy, x, y, seed=0, stochastic=False)["repeat_max_abs_diff"] > 1e-3
    # Same outputs every time, a different gradient every time: only the gradient shows it.
    model = _NoisyGradient()
    values = diagnose(model, model, x, y, seed=0, stochastic=False)
    assert values["repeat_max_abs_diff"] == 0.0
    assert values["repeat_grad_rel_diff"] > 0.1


ZOO = """
[run]
name = "honest-zoo"
dataset = "digits"
n_examples = 120
seed = 0

[[models]]
name = "standard"
zoo = "digits-cnn"

[[models]]
name = "pgd-at"
zoo = "digits-cnn"
recipe = "pgd_at"

[[models]]
name = "ensemble"
zoo = "digits-cnn"
ensemble = 5

[[models]]
name = "mc-dropout"
zoo = "digits-cnn-dropout"
mc_samples = 30

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = 20

[sweep]
eps = [0.0, 0.05, 0.1, 0.2, 0.3]
"""


@pytest.mark.slow
def test_the_honest_zoo_raises_no_warning(tmp_path: Path) -> None:
    """The embedded default's models, trained as it trains them, on fewer examples."""
    (tmp_path / "zoo.toml").write_text(textwrap.dedent(ZOO))
    argv = ["run", str(tmp_path / "zoo.toml"), "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["warnings"] == []
    for model, diagnostics in summary["diagnostics"].items():
        assert diagnostics["large_eps_accuracy"] <= 0.03, model  # 0.0 seen for all four
        assert diagnostics["probe"]["eps"] == [0.1, 0.3]
    assert len(summary["probes"]) == 8
    # No probe warning is the claim (the sign test of the checks), not a count of one run.
