"""The Ray executor on a local Ray instance (2 CPUs): the same numbers as the local executor,
failed tasks recorded without stopping the others, and a SIGKILLed driver that resumes."""

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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from robustbench_local.bench.config import load_config  # noqa: E402
from robustbench_local.bench.executor import LocalExecutor  # noqa: E402
from robustbench_local.bench.executors_ray import RayExecutor  # noqa: E402
from robustbench_local.bench.runner import RunOptions, run_benchmark  # noqa: E402
from robustbench_local.results.store import ResultsStore  # noqa: E402
from robustbench_local.results.summary import summarize  # noqa: E402
from tests.robustbench_local.bench.ray_models import write_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]

CONFIG = """
[run]
name = "rayrun"
dataset = "digits"
n_examples = 60
batch_size = 20
seed = 5

[[models]]
name = "standard"
zoo = "digits-cnn"
train = {{ epochs = 2 }}

[[models]]
name = "mcd"
zoo = "digits-cnn-dropout"
mc_samples = 3
train = {{ epochs = 2 }}

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = 3

[sweep]
eps = [0.0, 0.1, 0.2]

[explain]
enabled = {explain}
{extra}
"""

FAILING = """
[run]
name = "failing"
dataset = "digits"
n_examples = 40
batch_size = 20
seed = 5

[[models]]
name = "standard"
zoo = "digits-cnn"
train = {{ epochs = 2 }}

[[models]]
name = "broken"
factory = "tests.robustbench_local.bench.ray_models:no_gradients"
checkpoint = "{checkpoint}"

[[attacks]]
name = "fgsm"

[sweep]
eps = [0.0, 0.1]

[explain]
enabled = false

[executor]
max_retries = 1
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray instance for the module; its workers import this checkout (and the
    tests' user models) through PYTHONPATH, which they inherit."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def _config(folder: Path, text: str, **fields: str) -> Path:
    path = folder / "config.toml"
    path.write_text(textwrap.dedent(text.format(**fields)), encoding="utf-8")
    return path


def _run(path: Path, out: Path, cache_dir: Path, executor) -> ResultsStore:
    options = RunOptions(device="cpu", quiet=True, cache_dir=cache_dir)
    return run_benchmark(load_config(path), out, options, executor)


def _contents(store: ResultsStore) -> dict:
    jobs = {r.key: (r.metrics, store.samples(r.key)) for r in store.jobs()}
    return {"jobs": jobs, "diagnostics": store.diagnostics()}


def _same_number(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == y


def _assert_same(a: dict, b: dict) -> None:
    """Exactly equal: the same code on the same CPU with the same seeds."""
    assert a["jobs"].keys() == b["jobs"].keys()
    for key, (metrics_a, samples_a) in a["jobs"].items():
        metrics_b, samples_b = b["jobs"][key]
        assert metrics_a.keys() == metrics_b.keys(), key
        for name in metrics_a:
            assert _same_number(metrics_a[name], metrics_b[name]), (key, name)
        assert samples_a.keys() == samples_b.keys()
        for column in samples_a:
            np.testing.assert_array_equal(samples_a[column], samples_b[column], err_msg=column)
    # Nested numbers; NaN is written alike on both sides.
    assert json.dumps(a["diagnostics"], sort_keys=True) == json.dumps(
        b["diagnostics"], sort_keys=True
    )


def test_ray_equals_local_whatever_the_shard_size(
    tmp_path, cache_dir, ray_session, one_thread
) -> None:
    # Ray gives each worker one thread (OMP_NUM_THREADS = cpus_per_task): the local run
    # uses one too, so both sum in the same order.
    local = _config(tmp_path, CONFIG, explain="false", extra="")
    with _run(local, tmp_path / "local", cache_dir, LocalExecutor()) as store:
        expected = _contents(store)
    (tmp_path / "sharded").mkdir()
    sharded = _config(
        tmp_path / "sharded", CONFIG, explain="false", extra="[executor]\nshard_size = 20"
    )
    executor = RayExecutor()
    with _run(sharded, tmp_path / "ray", cache_dir, executor) as store:
        _assert_same(expected, _contents(store))
        assert len(store.jobs()) == 12  # 2 models x 2 attacks x 3 eps, each from 3 shards
        environment = store.get_meta("environment")
        assert store.get_meta("complete") is True
    assert environment["executor"] == "ray"
    assert environment["ray"] == ray.__version__
    assert environment["ray_nodes"] == 1 and environment["ray_gpus"] == 0
    executor.close()
    assert ray.is_initialized()  # a Ray the executor did not start is left running


def test_a_task_that_raises_is_retried_then_recorded_as_failed(
    tmp_path, cache_dir, ray_session
) -> None:
    write_checkpoint(str(tmp_path / "broken.pt"))
    path = _config(tmp_path, FAILING, checkpoint=str(tmp_path / "broken.pt"))
    with _run(path, tmp_path / "run", cache_dir, RayExecutor()) as store:
        finished = {(k.model, k.attack, k.eps) for k in store.finished()}
        failures = store.failures()
        complete = store.get_meta("complete")
        summary = summarize(store)
    assert finished == {
        ("standard", "fgsm", 0.0),
        ("standard", "fgsm", 0.1),
        ("broken", "fgsm", 0.0),  # no gradient needed: no attack at eps 0
    }
    assert sorted((f.kind, f.key["model"], f.attempts) for f in failures) == [
        ("diagnostics", "broken", 2),
        ("job", "broken", 2),  # max_retries = 1: two attempts
    ]
    job = next(f for f in failures if f.kind == "job")
    assert job.key == {"model": "broken", "attack": "fgsm", "eps": 0.1}
    assert all(f.error == "RuntimeError: this model refuses gradients" for f in failures)
    assert complete is False
    assert [(f.kind, f.key["model"]) for f in summary.failed] == [
        (f.kind, f.key["model"]) for f in failures
    ]
    assert summary.to_json_dict()["failed"][0]["error"].startswith("RuntimeError")


def _stored(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        with ResultsStore(path, readonly=True) as store:
            return len(store.finished())
    except sqlite3.OperationalError:
        return 0  # the file exists but its tables are still being created


def test_a_sigkilled_ray_driver_resumes_to_the_same_numbers(
    tmp_path, cache_dir, ray_session, one_thread
) -> None:
    path = _config(tmp_path, CONFIG, explain="true", extra="")
    with _run(path, tmp_path / "local", cache_dir, LocalExecutor()) as store:
        expected = _contents(store)  # also trains the models into the cache first
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "robustbench_local.cli",
        "run",
        str(path),
        *("--out", str(out), "--device", "cpu", "--quiet", "--cache-dir", str(cache_dir)),
        *("--executor", "ray"),
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # Its own process group: the driver and the local Ray instance it starts die together.
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if _stored(out / "results.sqlite") >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = _stored(out / "results.sqlite")
    assert 1 <= partial < len(expected["jobs"])
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    with ResultsStore(out / "results.sqlite", readonly=True) as store:
        _assert_same(expected, _contents(store))
        assert store.get_meta("complete") is True
    assert (out / "summary.json").is_file()
