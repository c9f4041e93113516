"""`rbl run` finds every mistake before work starts: one line naming file, section and key.

Each case puts the mistake in the LAST model (or attack), after a zoo model that would be
trained first, and checks that rbl stops with exit status 2 and one line, before the run
folder exists and before anything is trained (the cache stays empty).
"""

from __future__ import annotations

import errno
import sqlite3
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import robustbench_local.atomic as atomic
import robustbench_local.bench.preflight as preflight
from robustbench_local.bench.builders import train_specs
from robustbench_local.bench.config import load_config
from robustbench_local.bench.runner import RunOptions, prepare_run
from robustbench_local.cli import _one_line, main
from robustbench_local.zoo.checkpoints import save_checkpoint
from robustbench_local.zoo.training import default_spec

USER_MODULE = """
import torch
from torch import nn

CALLS = []  # one entry per model built: the run must build each user model once


class Net(nn.Module):
    def __init__(self, channels=1, classes=10, mode="logits"):
        super().__init__()
        self.net = nn.Sequential(
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(4 * channels, classes)
        )
        self.mode = mode

    def forward(self, x):
        z = self.net(x)
        if self.mode == "tuple":
            return z, x
        if self.mode == "dict":
            return {"logits": z}
        if self.mode == "vector":
            return z[:, 0]
        if self.mode == "column":
            return z.unsqueeze(-1)
        if self.mode == "labels":
            return z.argmax(dim=1)
        if self.mode == "nan":
            return z * float("nan")
        if self.mode == "probs":
            return z.softmax(dim=1)
        return z


def build(channels=1, classes=10, mode="logits"):
    CALLS.append(mode)
    return Net(channels, classes, mode)


def broken(**kwargs):
    raise RuntimeError("boom in the factory")


def not_a_model():
    return "a string"
"""

CONFIG = """
[run]
name = "tiny"
dataset = "{dataset}"
n_examples = {n_examples}
{run_extra}

[[models]]
name = "first"
zoo = "{zoo}"
train = {{ epochs = 1 }}

[[models]]
name = "mine"
factory = "{module}:{factory}"
checkpoint = "{checkpoint}"
factory_kwargs = {kwargs}

[[attacks]]
name = "fgsm"

[[attacks]]
name = "pgd"
steps = {steps}

[sweep]
eps = [0.0, 0.1]
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable module of user factories (a unique name); returns its name."""
    name = f"rbl_preflight_models_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _checkpoint(tmp_path: Path, module: str, channels: int = 1, classes: int = 10) -> str:
    """Weights for build(channels, classes), in a file beside the config; returns its name."""
    __import__(module)
    net = sys.modules[module].Net(channels, classes)
    name = f"w{channels}x{classes}.safetensors"
    save_checkpoint(net, tmp_path / name)
    return name


def _config(
    tmp_path: Path,
    module: str,
    *,
    factory: str = "build",
    kwargs: str = "{}",
    classes: int = 10,
    channels: int = 1,
    dataset: str = "digits",
    zoo: str = "digits-cnn",
    n_examples: int = 12,
    run_extra: str = "",
    steps: int = 2,
) -> Path:
    path = tmp_path / "c.toml"
    text = CONFIG.format(
        dataset=dataset,
        n_examples=n_examples,
        run_extra=run_extra,
        zoo=zoo,
        module=module,
        factory=factory,
        checkpoint=_checkpoint(tmp_path, module, channels, classes),
        kwargs=kwargs,
        steps=steps,
    )
    path.write_text(text, encoding="utf-8")
    return path


def _argv(tmp_path: Path, config: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(config),
        "--out",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]


def _fails_before_work(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run rbl; expect exit status 2, one line, no run folder and an empty cache."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.rglob("*"))  # nothing trained
    return err


# --- user models: built once, before any zoo model is trained ---------------------------


def test_a_factory_that_raises_is_one_line_naming_the_model(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, factory="broken")
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert f"c.toml: [[models]] 'mine'.factory: calling '{user_module}:broken' raised " in err
    assert "RuntimeError: boom in the factory" in err


def test_bad_factory_kwargs_name_the_key(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, kwargs="{ widht = 3 }")
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "c.toml: [[models]] 'mine'.factory_kwargs: " in err
    assert "unexpected keyword argument 'widht'" in err
    assert "(channels=1, classes=10, mode='logits')" in err  # what it does accept


def test_a_factory_returning_a_non_module(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, factory="not_a_model")
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "[[models]] 'mine'.factory: " in err
    assert "returned a str; expected a torch.nn.Module" in err


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("tuple", "forward returned a tuple of 2 items; rbl needs one Tensor of logits"),
        ("dict", "forward returned a dict with keys ['logits']; rbl needs one Tensor"),
        (
            "vector",
            "forward returned shape (4,) for a batch of 4; rbl needs one Tensor of "
            "logits of shape (B, K) = (4, 10): one row of 10 class scores per input",
        ),
        (
            "column",
            "forward returned shape (4, 10, 1) for a batch of 4; rbl needs one "
            "Tensor of logits of shape (B, K) = (4, 10): drop the trailing dimensions",
        ),
        ("labels", "forward returned a torch.int64 tensor of shape (4,)"),
        ("nan", "forward returned NaN or infinite values on 4 inputs"),
    ],
)
def test_bad_model_outputs_are_named(tmp_path, user_module, capsys, mode, expected):
    config = _config(tmp_path, user_module, kwargs=f'{{ mode = "{mode}" }}')
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "c.toml: [[models]] 'mine'.factory: " in err
    assert expected in err


def test_a_model_with_other_classes_than_the_dataset(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, kwargs="{ classes = 5 }", classes=5)
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "[[models]] 'mine'.factory: forward returned 5 scores per input, but dataset " in err
    assert "'digits' has 10 classes; build the model with 10 outputs" in err


def test_a_checkpoint_that_does_not_fit_the_model(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, kwargs="{ classes = 5 }", classes=10)
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "c.toml: [[models]] 'mine'.checkpoint: could not load " in err


def test_probability_outputs_warn_and_the_run_goes_on(tmp_path, user_module, capsys, monkeypatch):
    import robustbench_local.bench.runner as runner

    def stop(config, out, options, **kwargs):
        raise ValueError("stopped where the work would start")

    monkeypatch.setattr(runner, "run_benchmark", stop)
    config = _config(tmp_path, user_module, kwargs='{ mode = "probs" }')
    with pytest.raises(SystemExit):
        main(_argv(tmp_path, config))
    err = capsys.readouterr().err
    assert "rbl run: warning: " in err and "c.toml: [[models]] 'mine': forward returns " in err
    assert "look like probabilities" in err and "expects logits" in err
    assert "stopped where the work would start" in err


def test_a_user_model_is_built_once_and_the_run_uses_it(tmp_path, user_module, capsys):
    path = tmp_path / "only.toml"
    path.write_text(
        textwrap.dedent(f"""
        [run]
        name = "mine-only"
        dataset = "digits"
        n_examples = 8

        [[models]]
        name = "mine"
        factory = "{user_module}:build"
        checkpoint = "{_checkpoint(tmp_path, user_module)}"

        [[attacks]]
        name = "fgsm"

        [sweep]
        eps = [0.0, 0.1]
        """),
        encoding="utf-8",
    )
    assert main(_argv(tmp_path, path)) == 0
    assert sys.modules[user_module].CALLS == ["logits"]  # built once: checked, then run
    assert (tmp_path / "run" / "results.sqlite").is_file()
    assert not (tmp_path / "cache").exists()  # no zoo model: the cache is not touched


# --- the last attack, the data, the zoo ----------------------------------------------------


def test_a_bad_parameter_of_the_last_attack_stops_before_training(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, steps=0)
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "c.toml: [[attacks]] 'pgd'.steps: " in err


def test_n_examples_larger_than_the_split(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, n_examples=500)
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert (
        "c.toml: [run].n_examples: must be at most 360, the number of examples in dataset "
        "'digits' split 'test'; got 500" in err
    )


def test_a_zoo_model_for_other_images(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module, zoo="cifar-resnet18")
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert (
        "c.toml: [[models]] 'first'.zoo: zoo model 'cifar-resnet18' takes inputs of shape "
        "(3, 32, 32), but dataset 'digits' has images of shape (1, 8, 8); zoo models for it: "
        "digits-cnn, digits-cnn-dropout" in err
    )


def test_a_zoo_num_classes_other_than_the_dataset(tmp_path, user_module, capsys):
    config = _config(tmp_path, user_module)
    text = config.read_text().replace("train = { epochs = 1 }", "train = { num_classes = 5 }")
    config.write_text(text)
    err = _fails_before_work(tmp_path, _argv(tmp_path, config), capsys)
    assert "c.toml: [[models]] 'first'.train: num_classes must match dataset 'digits'" in err


# --- imagefolder: the class folders give K ----------------------------------------------


def test_imagefolder_classes_come_from_the_folders(tmp_path, user_module, fake_writers, capsys):
    source = fake_writers["imagefolder"](tmp_path / "images")  # two classes: cat, dog
    config = _config(
        tmp_path,
        user_module,
        dataset="imagefolder",
        zoo="cifar-resnet18",
        n_examples=4,
        run_extra=f'data_root = "{source.data_root}"',
        kwargs="{ channels = 3, classes = 2 }",
        channels=3,
        classes=2,
    )
    loaded = load_config(config)
    options = RunOptions(device="cpu", cache_dir=tmp_path / "cache")
    prepared = prepare_run(loaded, tmp_path / "run", options)
    assert prepared.num_classes == 2
    # The zoo model is trained for the folders' two classes, without `num_classes` in train.
    assert train_specs(loaded.models[0], loaded.run, prepared.fingerprint)[0].num_classes == 2
    assert default_spec("cifar-resnet18", "imagefolder", "standard", data_root=source.data_root)

    # A user model with the wrong number of outputs is named, with where K comes from.
    wrong = _config(
        tmp_path,
        user_module,
        dataset="imagefolder",
        zoo="cifar-resnet18",
        n_examples=4,
        run_extra=f'data_root = "{source.data_root}"',
        kwargs="{ channels = 3, classes = 10 }",
        channels=3,
        classes=10,
    )
    err = _fails_before_work(tmp_path, _argv(tmp_path, wrong), capsys)
    assert "forward returned 10 scores per input, but dataset 'imagefolder' has 2 classes " in err
    assert "(its class folders under " in err


def test_imagefolder_num_classes_must_match_the_folders(tmp_path, fake_writers) -> None:
    source = fake_writers["imagefolder"](tmp_path / "images")
    with pytest.raises(ValueError, match=r"must match the 2 class folders .* got num_classes=3"):
        default_spec(
            "cifar-resnet18", "imagefolder", "standard", data_root=source.data_root, num_classes=3
        )
    with pytest.raises(ValueError, match=r"pass data_root \(or num_classes=K\)"):
        default_spec("cifar-resnet18", "imagefolder", "standard")


# --- folders: writable before any work ---------------------------------------------------


def test_an_output_folder_that_cannot_be_created(tmp_path, user_module, capsys):
    (tmp_path / "a-file").write_text("x")
    argv = _argv(tmp_path, _config(tmp_path, user_module))
    argv[argv.index("--out") + 1] = str(tmp_path / "a-file" / "run")
    err = _fails_before_work(tmp_path, argv, capsys)
    assert f"output folder '{tmp_path / 'a-file' / 'run'}' is not writable " in err
    assert "is a file, not a folder): choose another --out" in err


def test_a_cache_that_cannot_be_created(tmp_path, user_module, capsys):
    (tmp_path / "a-file").write_text("x")
    argv = _argv(tmp_path, _config(tmp_path, user_module))
    argv[argv.index("--cache-dir") + 1] = str(tmp_path / "a-file" / "cache")
    err = _fails_before_work(tmp_path, argv, capsys)
    assert f"checkpoint cache '{tmp_path / 'a-file' / 'cache'}' is not writable (" in err
    assert "pass --cache-dir (or set RBL_CACHE_DIR) to a writable folder" in err


def test_a_read_only_cache(tmp_path, user_module, capsys, monkeypatch):
    # Tests may run as root, for whom a chmod'ed folder is still writable: the probe's
    # failure in the cache is what a read-only folder (or mount) gives.
    probe = preflight.tempfile.TemporaryFile

    def read_only_cache(*args, **kwargs):
        if Path(kwargs["dir"]) == tmp_path / "cache":
            raise PermissionError(errno.EACCES, "Permission denied")
        return probe(*args, **kwargs)

    monkeypatch.setattr(preflight.tempfile, "TemporaryFile", read_only_cache)
    err = _fails_before_work(tmp_path, _argv(tmp_path, _config(tmp_path, user_module)), capsys)
    assert (
        f"checkpoint cache '{tmp_path / 'cache'}' is not writable (Permission denied in "
        f"'{tmp_path / 'cache'}'): pass --cache-dir (or set RBL_CACHE_DIR) to a writable folder"
    ) in err


# --- a full disk ---------------------------------------------------------------------------


def test_a_full_disk_leaves_no_partial_file_and_one_line(tmp_path, monkeypatch, capsys):
    def full(path: Path, data: bytes) -> None:
        path.write_bytes(data[: len(data) // 2])  # what a disk filling mid-write leaves
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "_write_file", full)
    cache = tmp_path / "cache"
    argv = ["train", "--zoo", "digits-cnn", "--dataset", "digits", "--set", "epochs=1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--device", "cpu", "--cache-dir", str(cache)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rbl train: error: no space left on device writing '")
    assert ".safetensors': free some space (or point --out / --cache-dir elsewhere)" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(cache.rglob("*.partial")) == []
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_a_full_disk_under_the_store_is_named_as_such(tmp_path) -> None:
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("PRAGMA max_page_count = 2")  # a store that cannot grow: SQLITE_FULL
    db.execute("CREATE TABLE t (x BLOB)")
    with pytest.raises(sqlite3.OperationalError) as info:
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    db.close()
    message = _one_line(info.value)
    assert message.startswith("the disk is full: a results store could not be written")
    assert "free some space" in message and "corrupt" not in message


def test_a_many_line_message_becomes_one_line() -> None:
    assert _one_line(ValueError("first\n  second\n\nthird")) == "first second third"


def test_write_atomically_names_the_destination_and_cleans_up(tmp_path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    atomic.write_atomically(target, "old")

    def full(path: Path, data: bytes) -> None:
        path.write_bytes(data[:1])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(atomic, "_write_file", full)
    with pytest.raises(OSError) as info:
        atomic.write_atomically(target, "new content")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old"  # the old file stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
