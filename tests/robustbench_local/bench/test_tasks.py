"""Tasks and executors without Ray: the [executor] table, shard joining, retries, the CLI."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from robustbench_local.bench.config import ConfigError, parse_config, tomllib
from robustbench_local.bench.executor import Finished, LocalExecutor
from robustbench_local.bench.runner import JobOutcome, Task, merge_shards, plan_tasks
from robustbench_local.cli import main
from robustbench_local.results.store import JobKey

BASE = """
[run]
dataset = "digits"
n_examples = 100
batch_size = 20

[[models]]
name = "standard"
zoo = "digits-cnn"

[[attacks]]
name = "fgsm"

[sweep]
eps = [0.0, 0.1]
"""


def _parse(extra: str = ""):
    return parse_config(tomllib.loads(textwrap.dedent(BASE) + extra), source="c.toml")


def test_the_executor_table_is_checked_and_left_out_of_the_digest() -> None:
    config = _parse("[executor]\nshard_size = 40\ngpus_per_task = 0.25\nmax_retries = 0\n")
    assert config.executor.shard_size == 40 and config.executor.gpus_per_task == 0.25
    assert config.digest() == _parse().digest()  # where tasks run is not what they compute
    with pytest.raises(ConfigError, match=r"c.toml: \[executor\].shard_size: must be a multiple"):
        _parse("[executor]\nshard_size = 30\n")
    with pytest.raises(ConfigError, match=r"\[executor\].max_retry: unknown key"):
        _parse("[executor]\nmax_retry = 1\n")
    with pytest.raises(ConfigError, match=r"\[executor\].max_retries: must be an integer >= 0"):
        _parse("[executor]\nmax_retries = -1\n")


def test_plan_tasks_cuts_attack_jobs_into_whole_batch_shards() -> None:
    config = _parse("[executor]\nshard_size = 40\n")
    job = JobKey("standard", "fgsm", 0.1)
    tasks = plan_tasks(config, [job], 100)
    assert [(t.start, t.stop, t.shards) for t in tasks] == [(0, 40, 3), (40, 80, 3), (80, 100, 3)]
    assert plan_tasks(_parse(), [job], 100) == [Task(job)]


def _shard(start: int, stop: int, metrics: dict[str, float]) -> JobOutcome:
    rows = np.arange(start, stop)
    samples = {"idx": rows, "label": rows % 2}
    return JobOutcome(JobKey("m", "a", 0.1), metrics, samples, [], 1.0, "digest")


def test_merge_shards_refuses_a_metric_it_cannot_join(monkeypatch) -> None:
    from robustbench_local.bench import runner

    monkeypatch.setattr(runner, "job_metrics", lambda s: {"n": float(len(s["idx"]))})
    joined = merge_shards(
        [_shard(2, 4, {"n": 2.0, "margin_fallback": 1.0}), _shard(0, 2, {"n": 2.0})]
    )
    assert joined.samples["idx"].tolist() == [0, 1, 2, 3]  # in row order
    assert joined.metrics == {"n": 4.0, "margin_fallback": 1.0} and joined.seconds == 2.0
    with pytest.raises(ValueError, match=r"'rate'.* cannot be joined across shards"):
        merge_shards([_shard(0, 2, {"n": 2.0, "rate": 0.5}), _shard(2, 4, {"n": 2.0})])


def test_the_local_executor_retries_then_reports_the_failure() -> None:
    calls: list[int] = []

    def run(task: int, resources: object) -> int:
        calls.append(task)
        if task == 2:
            raise RuntimeError("boom\nsecond line")
        return task * 10

    done = list(LocalExecutor().run(run, [1, 2, 3], None, max_retries=2))
    assert done == [
        Finished(1, 10),
        Finished(2, None, "RuntimeError: boom", 3),
        Finished(3, 30),
    ]
    assert calls == [1, 2, 2, 2, 3]


def test_executor_ray_without_ray_is_one_line_before_any_work(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--executor", "ray", "--out", str(tmp_path / "x"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install robustbench-local[ray]" in err
    assert not (tmp_path / "x").exists()


def test_shards_smaller_than_the_split_need_explain_off() -> None:
    from robustbench_local.bench.runner import RunOptions, prepare_run

    config = _parse("[executor]\nshard_size = 40\n")  # [explain] is on by default
    with pytest.raises(ConfigError, match=r"\[executor\].shard_size: \[explain\] compares whole"):
        prepare_run(config, None, RunOptions(device="cpu"))
    whole = _parse("[executor]\nshard_size = 100\n")  # one shard: the whole split
    assert prepare_run(whole, None, RunOptions(device="cpu")).x.shape[0] == 100
