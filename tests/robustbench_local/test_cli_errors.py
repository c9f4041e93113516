"""rbl's expected failures: one line, exit status 2, the traceback only with --debug."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from robustbench_local.cli import main
from robustbench_local.results.run_lock import LOCK_NAME, RunLock
from robustbench_local.zoo.checkpoints import save_checkpoint

CONFIG = """
[run]
name = "tiny"
dataset = "digits"
n_examples = 20

[[models]]
name = "standard"
zoo = "digits-cnn"

[[attacks]]
name = "fgsm"
{extra}
[sweep]
eps = [0.0, 0.1]
"""


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run rbl, expect exit status 2, return what it printed on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_corrupt_store_is_named_with_what_to_do(tmp_path: Path, capsys) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"this is not an sqlite file" * 100)
    err = _fails(["report", str(tmp_path)], capsys)
    assert "corrupt" in err and "--fresh" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_debug_adds_the_traceback(tmp_path: Path, capsys) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"garbage" * 100)
    err = _fails(["--debug", "report", str(tmp_path)], capsys)
    assert "Traceback" in err and "corrupt" in err


def test_out_pointing_at_a_file_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    err = _fails(["run", "--out", str(target), "--quiet", "--device", "cpu"], capsys)
    assert "--out" in err and "is a file" in err


def test_a_bad_training_override_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["train", "--zoo", "digits-cnn", "--dataset", "digits", "--set", "lr=abc"]
    err = _fails([*argv, "--cache-dir", str(tmp_path)], capsys)
    assert "lr" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing trained, nothing cached


def test_the_worst_label_is_reserved_for_the_worst_case(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(extra='label = "worst"\n'))
    err = _fails(["run", str(config), "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert "c.toml" in err and "label" in err and "reserved" in err


def test_a_busy_run_folder_is_refused_at_once_naming_its_holder(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(extra=""))
    run = tmp_path / "run"
    with RunLock(run):
        err = _fails(
            ["run", str(config), "--out", str(run), "--quiet", "--cache-dir", str(tmp_path)],
            capsys,
        )
    assert "in use" in err and f"pid {os.getpid()}" in err
    assert not (run / "results.sqlite").exists()  # refused before any work


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    # A killed run leaves its lock file; the kernel has dropped its flock with the process.
    (tmp_path / LOCK_NAME).write_text("pid 999999 on elsewhere\n")
    with RunLock(tmp_path):
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_NAME).read_text()


def test_checkpoints_follow_the_umask_like_every_other_cache_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_fresh_with_out_moves_the_old_store_aside(tmp_path: Path, capsys, monkeypatch) -> None:
    import robustbench_local.bench.runner as runner

    def stop(config, out, options, **kwargs):
        assert not (out / "results.sqlite").exists()  # the run starts on an empty folder
        raise ValueError("stopped before any work")

    monkeypatch.setattr(runner, "run_benchmark", stop)
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(extra=""))
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.sqlite").write_bytes(b"old results")
    err = _fails(["run", str(config), "--out", str(run), "--fresh", "--quiet"], capsys)
    assert "stopped before any work" in err
    kept = list(run.glob("results-*.sqlite.old"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"old results"


def test_a_missing_factory_in_the_last_model_fails_before_any_training(
    tmp_path: Path, capsys
) -> None:
    (tmp_path / "w.safetensors").write_bytes(b"")
    config = tmp_path / "c.toml"
    config.write_text(
        CONFIG.format(extra="")
        + '\n[[models]]\nname = "mine"\nfactory = "no_such_module_here:build"\n'
        'checkpoint = "w.safetensors"\n'
    )
    cache = tmp_path / "cache"
    err = _fails(
        ["run", str(config), "--out", str(tmp_path / "run"), "--quiet", "--cache-dir", str(cache)],
        capsys,
    )
    assert "c.toml" in err and "[[models]] 'mine'" in err and "factory" in err
    assert "no_such_module_here" in err
    assert not cache.exists() and not (tmp_path / "run").exists()
