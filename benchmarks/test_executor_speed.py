"""Wall time of a 24-task digits grid: the Ray executor against the local one, on 2 CPUs.

Run with `pytest benchmarks/test_executor_speed.py --benchmark-only -s`. One local Ray
instance (2 CPUs, 1 per task) is started once for the module, so its start-up (about 15 s
here) is not in the timings; the models are trained into a temporary cache before the first
round. Each round runs the whole grid into a fresh run folder with each executor, the local
one just before Ray (`timing.interleaved_ratios`), and the ratio reported is ray / local.
On 2 cores the two executors have the same two cores: Ray runs two 1-thread tasks side by
side where the local executor runs one task on two threads, so the ratio measures Ray's
overhead (scheduling, shipping, a model built per worker), which must stay under 1.3.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from benchmarks.timing import interleaved_ratios
from robustbench_local.bench.config import load_config
from robustbench_local.bench.executor import LocalExecutor
from robustbench_local.bench.runner import RunOptions, run_benchmark

ray = pytest.importorskip("ray")
from robustbench_local.bench.executors_ray import RayExecutor  # noqa: E402

# 2 models x 2 attacks x 6 eps = 24 attack tasks (and 2 diagnostics tasks).
GRID = """
[run]
name = "grid"
dataset = "digits"
n_examples = 200
batch_size = 100
seed = 0

[[models]]
name = "standard"
zoo = "digits-cnn"
train = { epochs = 2 }

[[models]]
name = "mcd"
zoo = "digits-cnn-dropout"
mc_samples = 4
train = { epochs = 2 }

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = 10

[sweep]
eps = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]

[explain]
enabled = false
"""

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def test_ray_against_local_on_a_24_task_grid(benchmark, tmp_path, ray_session) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(textwrap.dedent(GRID), encoding="utf-8")
    config = load_config(path)
    options = RunOptions(device="cpu", quiet=True, cache_dir=tmp_path / "cache")
    runs = count()

    def run(executor) -> None:
        run_benchmark(config, tmp_path / f"run-{next(runs)}", options, executor).close()

    run(LocalExecutor())  # trains the models into the cache, outside the timings
    ratios = interleaved_ratios(
        benchmark,
        lambda: run(RayExecutor()),
        {"local": lambda: run(LocalExecutor())},
        rounds=3,
        group="24-task digits grid, 2 CPUs",
    )
    assert ratios["ours / local"] <= 1.3
