"""`rbl run` and `rbl train` on datasets read from disk: tiny files in torchvision's formats.

The digits runs never touch data_root; these check that training, evaluation and the cache
all see the folder the user named, and that a model trained on other images is not reused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from robustbench_local.cli import main
from tests.robustbench_local.conftest import write_imagefolder

RUN = """
[run]
name = "{name}"
dataset = "{dataset}"{data_root_line}
n_examples = 6
batch_size = 4

[[models]]
name = "tiny"
zoo = "{zoo}"
train = {{ epochs = 1, batch_size = 8{extra} }}

[[attacks]]
name = "fgsm"

[sweep]
eps = [0.0, 0.1]
"""


def _config(tmp_path: Path, name: str, data_root: str | None = None, **fields: str) -> Path:
    """A run config; data_root None leaves the key out (for --data-root to supply)."""
    line = "" if data_root is None else f'\ndata_root = "{data_root}"'
    config = tmp_path / f"{name}.toml"
    config.write_text(RUN.format(name=name, data_root_line=line, **{"extra": "", **fields}))
    return config


def _run(tmp_path: Path, cache: Path, name: str, *flags: str, **fields: str) -> dict:
    out = tmp_path / name
    config = _config(tmp_path, name, **fields)
    argv = ["run", str(config), "--out", str(out), "--quiet", "--cache-dir", str(cache)]
    assert main([*argv, *flags]) == 0
    return json.loads((out / "summary.json").read_text())


def test_a_run_trains_and_evaluates_on_mnist_files_named_by_data_root(
    tmp_path, fake_source
) -> None:
    source = fake_source("mnist")
    flags = ("--data-root", str(source.data_root))
    summary = _run(tmp_path, tmp_path / "cache", "mnist", *flags, dataset="mnist", zoo="mnist-cnn")

    rows = summary["results"]
    assert {(row["model"], row["eps"]) for row in rows} == {("tiny", 0.0), ("tiny", 0.1)}
    assert all(row["n"] == 6 for row in rows)
    assert summary["run"]["config"]["run"]["data_root"] == str(source.data_root.resolve())


def _fails(argv: list[str], capsys) -> str:
    """The one-line error rbl prints (exit status 2) for argv."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_data_root_from_the_command_line_is_checked_like_the_configs(tmp_path, capsys) -> None:
    config = _config(tmp_path, "nowhere", dataset="mnist", zoo="mnist-cnn")
    missing = tmp_path / "no-such-folder"
    error = _fails(["run", str(config), "--quiet", "--data-root", str(missing)], capsys)
    assert re.search(r"\(with data_root = '.*no-such-folder'\).*data_root.*does not exist", error)
    error = _fails(["run", str(config), "--quiet"], capsys)
    assert "dataset 'mnist' is read from disk: set data_root" in error


def test_rbl_train_reads_the_data_root_it_is_given(tmp_path, fake_source, capsys) -> None:
    source = fake_source("fashion-mnist")
    argv = ["train", "--zoo", "mnist-cnn", "--dataset", "fashion-mnist", "--device", "cpu"]
    argv += ["--set", "epochs=1", "--cache-dir", str(tmp_path / "cache")]
    assert "data_root is required for dataset 'fashion-mnist'" in _fails(argv, capsys)
    assert main([*argv, "--data-root", str(source.data_root)]) == 0
    assert main([*argv, "--data-root", str(source.data_root)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2].startswith("trained: ") and printed[-1].startswith("loaded from cache: ")


def test_a_model_trained_on_other_images_is_not_reused(tmp_path) -> None:
    cache = tmp_path / "cache"
    first = write_imagefolder(tmp_path / "first", size=32)
    second = write_imagefolder(tmp_path / "second", size=32)
    # Same layout, same class names, different pixels: only the content tells them apart.
    (second.data_root / "train" / "cat" / "0.png").write_bytes(
        (first.data_root / "train" / "dog" / "1.png").read_bytes()
    )
    fields = dict(dataset="imagefolder", zoo="cifar-resnet18", extra=", num_classes = 2")
    _run(tmp_path, cache, "first", data_root=str(first.data_root), **fields)
    _run(tmp_path, cache, "second", data_root=str(second.data_root), **fields)
    _run(tmp_path, cache, "again", data_root=str(first.data_root), **fields)

    entries = sorted(cache.rglob("*.safetensors"))
    assert len(entries) == 2, [p.name for p in entries]  # first and second; "again" reused
