"""The runner end to end on a small digits config: store, resume after SIGKILL, determinism."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from robustbench_local.bench.config import load_config
from robustbench_local.bench.runner import RunOptions, plan_jobs, run_benchmark
from robustbench_local.cli import main
from robustbench_local.results.store import ResultsStore, StoreError

CONFIG = """
[run]
name = "tiny"
dataset = "digits"
n_examples = 120
batch_size = 50
seed = 3

[[models]]
name = "standard"
zoo = "digits-cnn"
train = {{ epochs = 3 }}

[[models]]
name = "pair"
zoo = "digits-cnn"
ensemble = 2
train = {{ epochs = 3 }}

[[models]]
name = "mcd"
zoo = "digits-cnn-dropout"
mc_samples = 4
train = {{ epochs = 3 }}

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = {steps}

[sweep]
eps = [0.0, 0.1, 0.3]
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir) -> Path:
    """One complete run through the CLI, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("reference")
    assert main(_run_argv(folder, folder / "run", cache_dir)) == 0
    return folder / "run"


def _config(tmp_path: Path, steps: int = 5) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(CONFIG.format(steps=steps)), encoding="utf-8")
    return path


def _run_argv(tmp_path: Path, out: Path, cache_dir: Path) -> list[str]:
    """`rbl run` of the tiny config (written under tmp_path) into out, quietly, on the CPU."""
    config = str(_config(tmp_path))
    return [
        "run",
        config,
        "--out",
        str(out),
        "--device",
        "cpu",
        "--quiet",
        "--cache-dir",
        str(cache_dir),
    ]


def _run(tmp_path: Path, out: Path, cache_dir: Path) -> ResultsStore:
    config = load_config(_config(tmp_path))
    return run_benchmark(config, out, RunOptions(device="cpu", quiet=True, cache_dir=cache_dir))


def _contents(store: ResultsStore) -> dict:
    return {r.key: (r.metrics, store.samples(r.key)) for r in store.jobs()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        metrics_a, samples_a = a[key]
        metrics_b, samples_b = b[key]
        assert metrics_a.keys() == metrics_b.keys()
        for name in metrics_a:
            x, y = metrics_a[name], metrics_b[name]
            assert (math.isnan(x) and math.isnan(y)) or x == y, (key, name, x, y)
        for column in samples_a:
            np.testing.assert_array_equal(samples_a[column], samples_b[column])


def test_a_run_stores_every_job_with_sane_numbers(tmp_path, reference) -> None:
    store = ResultsStore(reference / "results.sqlite", readonly=True)
    config = load_config(_config(tmp_path))
    assert store.finished() == set(plan_jobs(config))
    assert store.get_meta("complete") is True
    jobs = {r.key: r.metrics for r in store.jobs()}
    for key, metrics in jobs.items():
        assert metrics["n"] == 120
        assert 0.0 <= metrics["accuracy"] <= metrics["clean_accuracy"] <= 1.0
        if key.eps == 0.0:
            assert metrics["accuracy"] == metrics["clean_accuracy"]
            assert metrics["auroc_epistemic"] in (0.5,) or math.isnan(metrics["auroc_epistemic"])
        samples = store.samples(key)
        assert float(samples["linf"].max()) <= key.eps + 1e-6
        # total = aleatoric + epistemic per sample; a single model has no epistemic part.
        np.testing.assert_allclose(
            samples["adv_total"], samples["adv_aleatoric"] + samples["adv_epistemic"], atol=1e-9
        )
        if key.model == "standard":
            assert float(np.abs(samples["adv_epistemic"]).max()) < 1e-9
    by = {(k.model, k.attack, k.eps): m["accuracy"] for k, m in jobs.items()}
    for model in ("standard", "pair", "mcd"):
        assert by[(model, "pgd", 0.3)] < by[(model, "pgd", 0.0)]  # attacks do something
    # Examples for the gallery are stored with each job.
    (first, *_) = store.examples(next(iter(jobs)))
    assert first[1].shape == (1, 8, 8)


def test_same_config_same_numbers(tmp_path, cache_dir, reference) -> None:
    with ResultsStore(reference / "results.sqlite", readonly=True) as store:
        first = _contents(store)
    _assert_same(first, _contents(_run(tmp_path, tmp_path / "again", cache_dir)))


def test_resume_skips_finished_jobs_and_refuses_another_config(tmp_path, cache_dir) -> None:
    store = _run(tmp_path, tmp_path / "run", cache_dir)
    finished = {r.key: r.seconds for r in store.jobs()}
    store.close()
    again = _run(tmp_path, tmp_path / "run", cache_dir)  # nothing left to do
    assert {r.key: r.seconds for r in again.jobs()} == finished
    other = load_config(_config(tmp_path, steps=7))
    with pytest.raises(StoreError, match=r"holds results of another config"):
        run_benchmark(
            other, tmp_path / "run", RunOptions(device="cpu", quiet=True, cache_dir=cache_dir)
        )


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, cache_dir, reference) -> None:
    with ResultsStore(reference / "results.sqlite", readonly=True) as store:
        expected = _contents(store)
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "robustbench_local.cli", *_run_argv(tmp_path, out, cache_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "results.sqlite").is_file():
            try:
                with ResultsStore(out / "results.sqlite", readonly=True) as store:
                    stored = len(store.finished())
            except sqlite3.OperationalError:
                stored = 0  # the file exists but its tables are still being created
            if stored >= 1:
                break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        partial = len(store.finished())
    assert 1 <= partial < len(expected)
    assert main(_run_argv(tmp_path, out, cache_dir)) == 0
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        _assert_same(_contents(store), expected)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["results"]) == len(expected)
    assert {
        "model",
        "attack",
        "eps",
        "accuracy",
        "mean_confidence",
        "mean_aleatoric",
        "mean_epistemic",
        "ece",
        "auroc_epistemic",
    } <= summary["results"][0].keys()
    assert (out / "report.html").is_file()


def test_worst_case_is_per_sample(tmp_path, cache_dir) -> None:
    assert main(_run_argv(tmp_path, tmp_path / "run", cache_dir)) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    with ResultsStore(tmp_path / "run" / "results.sqlite", readonly=True) as store:
        for row in summary["worst_case"]:
            robust = None
            for attack in ("fgsm", "pgd"):
                key = next(
                    k
                    for k in store.finished()
                    if (k.model, k.attack, k.eps) == (row["model"], attack, row["eps"])
                )
                s = store.samples(key)
                ok = (s["clean_pred"] == s["label"]) & (s["adv_pred"] == s["label"])
                robust = ok if robust is None else robust & ok
            assert row["accuracy"] == pytest.approx(float(robust.mean()))
            per_attack = [
                r["accuracy"]
                for r in summary["results"]
                if (r["model"], r["eps"]) == (row["model"], row["eps"])
            ]
            assert row["accuracy"] <= min(per_attack)


def test_cli_errors_are_one_clear_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.format(steps=5).replace('name = "fgsm"', 'name = "fgsn"'))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(bad), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "bad.toml: [[attacks]] #1.name: unknown attack 'fgsn' (did you mean 'fgsm'?)" in err
    assert not (tmp_path / "x").exists()  # refused before any work started
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "nowhere")])
    assert "is not a run folder" in capsys.readouterr().err


def test_list_commands(capsys) -> None:
    for what, expected in (
        ("models", "digits-cnn"),
        ("datasets", "digits"),
        ("attacks", "pgd"),
        ("recipes", "pgd_at"),
        ("corruptions", "gaussian_noise"),
        ("ood", "sklearn-photos"),
        ("transforms", "rotate"),
    ):
        assert main(["list", what]) == 0
        assert expected in capsys.readouterr().out


def test_rbl_train_trains_once_then_loads_from_the_cache(tmp_path, capsys) -> None:
    command = [
        "train",
        "--zoo",
        "digits-cnn",
        "--dataset",
        "digits",
        "--recipe",
        "fgsm_rs",
        "--set",
        "epochs=1",
        "--set",
        "eps=0.1",
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path),
    ]
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("trained")
    assert main(command) == 0
    assert capsys.readouterr().out.startswith("loaded from cache")
    with pytest.raises(SystemExit):
        main([*command, "--set", "epoch=2"])
    assert "epoch" in capsys.readouterr().err
