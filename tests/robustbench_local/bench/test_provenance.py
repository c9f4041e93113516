"""A resumed run refuses to mix numbers computed from other inputs or other weights."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_local.bench import runner as runner_module
from robustbench_local.bench.builders import BuiltModel
from robustbench_local.bench.config import parse_config, tomllib
from robustbench_local.bench.runner import RunOptions, run_benchmark
from robustbench_local.results.provenance import module_digest, pin, tensor_digest
from robustbench_local.results.store import JobKey, ResultsStore, StoreError

CONFIG = textwrap.dedent(
    """
    [run]
    name = "pinned"
    dataset = "digits"
    n_examples = 20
    batch_size = 20

    [[models]]
    name = "standard"
    zoo = "digits-cnn"
    train = { epochs = 1 }

    [[attacks]]
    name = "fgsm"

    [sweep]
    eps = [0.0, 0.1]
    """
)


def test_tensor_digest_sees_values_dtype_and_shape() -> None:
    x = torch.arange(6, dtype=torch.float32)
    digests = {
        tensor_digest([x]),
        tensor_digest([x.clone()]),  # equal data, equal digest
        tensor_digest([x + 1e-6]),
        tensor_digest([x.double()]),
        tensor_digest([x.view(2, 3)]),
        tensor_digest([x[:3], x[3:]]),
    }
    assert len(digests) == 5 and tensor_digest([x]) == tensor_digest([x.clone()])


def test_module_digest_follows_the_weights() -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    same = nn.Linear(3, 2)
    same.load_state_dict(net.state_dict())
    before = module_digest(net)
    assert module_digest(same) == before
    with torch.no_grad():
        net.bias[0] += 1e-6
    assert module_digest(net) != before


def test_pin_records_once_then_insists(tmp_path) -> None:
    with ResultsStore(tmp_path / "results.sqlite") as store:
        pin(store, "numerics", {"device": "cpu"}, "the device kind", "use cpu")
        pin(store, "numerics", {"device": "cpu"}, "the device kind", "use cpu")
        with pytest.raises(StoreError, match=r"the device kind differ .*'cuda'.*; use cpu"):
            pin(store, "numerics", {"device": "cuda"}, "the device kind", "use cpu")
        assert store.get_meta("numerics") == {"device": "cpu"}


def _forget(store_path: Path, eps: float) -> None:
    """Remove one finished job, so that the next run has it to do again."""
    with sqlite3.connect(store_path) as db:
        (job,) = db.execute("SELECT id FROM jobs WHERE eps = ?", (eps,)).fetchone()
        for table in ("samples", "examples", "explain_maps"):  # every table keyed by job
            db.execute(f"DELETE FROM {table} WHERE job = ?", (job,))
        db.execute("DELETE FROM jobs WHERE id = ?", (job,))


@pytest.fixture
def finished_run(tmp_path) -> tuple[object, Path, RunOptions]:
    config = parse_config(tomllib.loads(CONFIG))
    options = RunOptions(device="cpu", quiet=True, cache_dir=tmp_path / "cache")
    out = tmp_path / "run"
    run_benchmark(config, out, options).close()
    _forget(out / "results.sqlite", 0.1)
    return config, out, options


def test_resuming_with_other_weights_is_refused_and_keeps_the_results(
    finished_run, monkeypatch
) -> None:
    config, out, options = finished_run
    build = runner_module.build_model

    def retrained(*args, **kwargs) -> BuiltModel:
        built = build(*args, **kwargs)
        with torch.no_grad():  # as a retrain elsewhere would: other weights, same spec
            next(built.evaluate.parameters()).add_(1e-3)
        return built

    monkeypatch.setattr(runner_module, "build_model", retrained)
    with pytest.raises(StoreError, match=r"the weights of model 'standard' differ"):
        run_benchmark(config, out, options)
    # The refused run closed its store (its log folded back in), keeping the finished job.
    assert not (out / "results.sqlite-wal").exists()
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        assert [job.key for job in store.jobs()] == [JobKey("standard", "fgsm", 0.0)]

    monkeypatch.setattr(runner_module, "build_model", build)
    run_benchmark(config, out, options).close()  # the same weights again: it resumes
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        assert len(store.jobs()) == 2


def test_resuming_on_other_images_is_refused(finished_run, monkeypatch) -> None:
    config, out, options = finished_run
    load = runner_module.load_tensors

    def edited(*args, **kwargs):
        x, y = load(*args, **kwargs)
        x[0, 0, 0, 0] = 1.0 - x[0, 0, 0, 0]  # one pixel of one image changed on disk
        return x, y

    monkeypatch.setattr(runner_module, "load_tensors", edited)
    with pytest.raises(StoreError, match=r"the evaluated images and labels differ"):
        run_benchmark(config, out, options)
