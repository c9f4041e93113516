"""The [shift] section: validation before work, planning, batch independence, a full run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_local.bench.config import ConfigError, load_config
from robustbench_local.bench.protocol import Predictions, predict
from robustbench_local.bench.runner import plan_work
from robustbench_local.bench.shift_jobs import evaluate_shift, load_ood_sets, plan_shifts
from robustbench_local.cli import main
from robustbench_local.results.store import ResultsStore, ShiftKey

BASE = """\
[run]
name = "tiny-shift"
dataset = "digits"
n_examples = 40
batch_size = 16

[[models]]
name = "standard"
zoo = "digits-cnn"
train = { epochs = 1 }

[[attacks]]
name = "fgsm"

[sweep]
eps = [0.0, 0.1]
"""
SHIFT = """
[shift]
corruptions = ["gaussian_noise", "contrast"]
severities = [1, 5]
ood = ["noise", "inverted"]
"""


def _config(tmp_path: Path, shift: str = SHIFT) -> Path:
    path = tmp_path / "shift.toml"
    path.write_text(BASE + textwrap.dedent(shift), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("shift", "pattern"),
    [
        (
            'corruptions = ["gausian_noise"]',
            r"\[shift\].corruptions: .*did you mean 'gaussian_noise'",
        ),
        ('corruptions = ["saturate"]', r"\[shift\].corruptions: 'saturate' needs colour images"),
        (
            'corruptions = "some"',
            r'\[shift\].corruptions: must be a list of corruption names or "all"',
        ),
        (
            'corruptions = ["contrast"]\nseverities = [6]',
            r"\[shift\].severities: must hold integers 1..5",
        ),
        (
            'corruptions = ["contrast"]\nseverities = [2, 2]',
            r"\[shift\].severities: must not repeat",
        ),
        ('ood = ["digits"]', r"\[shift\].ood: 'digits' is the run's own dataset"),
        ('ood = ["nois"]', r"\[shift\].ood: .*did you mean 'noise'"),
        ('ood = ["noise"]\nseverity = 3', r"\[shift\].severity: unknown key"),
        ("severities = [1]", r"\[shift\]: needs `corruptions` or `ood`"),
    ],
)
def test_shift_mistakes_name_the_key_before_any_work(
    tmp_path: Path, shift: str, pattern: str
) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_config(tmp_path, f"[shift]\n{shift}\n"))


def test_all_means_every_corruption_the_images_allow(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, '[shift]\ncorruptions = "all"\n'))
    assert config.shift is not None
    assert "saturate" not in config.shift.corruptions  # digits are gray
    assert {"gaussian_noise", "rotate", "fog", "jpeg_compression"} <= set(config.shift.corruptions)
    assert config.shift.severities == (1, 2, 3, 4, 5)


def test_a_config_without_shift_plans_no_shift_jobs(tmp_path: Path) -> None:
    assert plan_shifts(load_config(_config(tmp_path, ""))) == []


def test_stored_shift_jobs_are_not_planned_again(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    keys = plan_shifts(config)
    assert len(keys) == 2 * 2 + 2
    done = ShiftKey("standard", "corruption", "contrast", 5)
    columns = {c: np.zeros(3) for c in ("pred", "label")}
    columns |= {c: np.zeros(3) for c in ("confidence", "total", "aleatoric", "epistemic")}
    columns |= {"nll": np.zeros(3), "brier": np.zeros(3), "idx": np.arange(3)}
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.write_shift_job(done, {"accuracy": 1.0}, columns)
        pending = [k for k in plan_work(config, store) if isinstance(k, ShiftKey)]
    assert done not in pending and len(pending) == len(keys) - 1


def _run_shift(key: ShiftKey, batch_size: int, x: torch.Tensor, y: torch.Tensor):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    clean = Predictions.concat(
        [
            predict(model, x[i : i + batch_size], y[i : i + batch_size])[0]
            for i in range(0, len(y), batch_size)
        ]
    )
    batches = [slice(i, min(i + batch_size, len(y))) for i in range(0, len(y), batch_size)]
    return evaluate_shift(
        key,
        model=model,
        clean=clean,
        x=x,
        y=y,
        batches=batches,
        seed=3,
        ood_sets={},
        device=torch.device("cpu"),
        reseed=lambda b: None,
    )


@pytest.mark.parametrize(
    "key",
    [
        ShiftKey("m", "corruption", "gaussian_noise", 3),
        ShiftKey("m", "corruption", "rotate", 5),
        ShiftKey("m", "ood", "noise", 0),
        ShiftKey("m", "ood", "inverted", 0),
    ],
)
def test_shift_numbers_do_not_depend_on_the_batch_size(key: ShiftKey) -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(30, 1, 8, 8, generator=generator)
    y = torch.randint(0, 10, (30,), generator=generator)
    metrics_a, samples_a, _ = _run_shift(key, 7, x, y)
    metrics_b, samples_b, _ = _run_shift(key, 30, x, y)
    for column, values in samples_a.items():
        np.testing.assert_allclose(values, samples_b[column], rtol=1e-5, atol=1e-6, err_msg=column)
    assert metrics_a.keys() == metrics_b.keys()


def test_a_missing_ood_dataset_is_a_config_error(tmp_path: Path) -> None:
    text = BASE.replace("n_examples = 40", f'n_examples = 40\ndata_root = "{tmp_path}"')
    path = tmp_path / "ood.toml"
    path.write_text(text + '\n[shift]\nood = ["mnist"]\n', encoding="utf-8")
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"\[shift\].ood: could not load dataset 'mnist'"):
        load_ood_sets(config, torch.zeros(40, 1, 8, 8))


def test_a_run_stores_and_summarises_every_shift_job(tmp_path: Path) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["run", str(_config(tmp_path)), "--out", str(out), "--device", "cpu", "--quiet"]
    argv += ["--cache-dir", str(cache)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["corruption"], r["severity"]) for r in summary["shift"]] == [
        ("gaussian_noise", 1),
        ("gaussian_noise", 5),
        ("contrast", 1),
        ("contrast", 5),
    ]
    assert [r["ood"] for r in summary["ood"]] == ["noise", "inverted"]
    (row,) = summary["shift_summary"]
    assert row["model"] == "standard" and row["mce"] == pytest.approx(1.0)
    for r in summary["shift"]:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["n"] == 40
    contrast = {
        r["severity"]: r["accuracy"] for r in summary["shift"] if r["corruption"] == "contrast"
    }
    assert contrast[5] < contrast[1]  # severity-5 contrast leaves a digit nearly flat
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "accuracy_vs_severity" in page and "ood_detection" in page
    # A second run finds every job stored and does nothing new.
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        before = len(store.shift_jobs())
    assert main(argv) == 0
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        assert len(store.shift_jobs()) == before == 6
