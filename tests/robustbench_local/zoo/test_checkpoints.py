"""Tests of checkpoint saving and safe loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from robustbench_local.zoo.checkpoints import (
    CheckpointMismatchError,
    UnsafeCheckpointError,
    load_checkpoint,
    load_state_dict,
    read_checkpoint_metadata,
    save_checkpoint,
)
from robustbench_local.zoo.models import MODELS, create_model


def _model(name: str = "digits-cnn", seed: int = 0, **kwargs: object) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(name, **kwargs)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _WritesMarker:
    """Unpickling this object opens (creates) the marker file: code run from a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class _RunsShell:
    """Unpickling this object runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("name", MODELS.names())
def test_safetensors_round_trip_restores_every_tensor(name, tmp_path):
    source = _model(name, seed=0)
    path = save_checkpoint(source, tmp_path / "model.safetensors", metadata={"zoo_name": name})
    assert path == tmp_path / "model.safetensors" and path.is_file()
    target = _model(name, seed=1)
    assert not _same_weights(source, target)
    assert load_checkpoint(target, path) is target
    assert _same_weights(source, target)
    assert read_checkpoint_metadata(path) == {"format": "pt", "zoo_name": name}


def test_round_trip_keeps_the_outputs(tmp_path):
    source = _model("digits-cnn-dropout").eval()
    path = save_checkpoint(source, tmp_path / "nested" / "dir" / "m.safetensors")
    target = load_checkpoint(_model("digits-cnn-dropout", seed=5), path).eval()
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(source(x), target(x))
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]  # no partial file left


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_torch_files_with_a_state_dict_load(tmp_path, suffix, wrapped):
    source = _model()
    payload = {"state_dict": source.state_dict(), "epoch": 3} if wrapped else source.state_dict()
    path = tmp_path / f"model{suffix}"
    torch.save(payload, path)
    target = load_checkpoint(_model(seed=1), path)
    assert _same_weights(source, target)
    assert read_checkpoint_metadata(path) == {}


def test_the_marker_payload_runs_code_when_unpickled_naively(tmp_path):
    # Control: proves the malicious objects below really execute code under plain pickle.
    for cls, marker in [(_WritesMarker, tmp_path / "a"), (_RunsShell, tmp_path / "b")]:
        pickle.loads(pickle.dumps(cls(marker)))
        assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("payload_cls", [_WritesMarker, _RunsShell])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickles_with_code_are_refused_without_running_it(tmp_path, payload_cls, writer):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    state = _model().state_dict()
    payload = {"state_dict": state, "extra": payload_cls(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafeCheckpointError, match="refused to load checkpoint") as info:
        load_checkpoint(_model(seed=1), path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not marker.exists()


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors"):
        load_checkpoint(_model(), path)


def test_unknown_extension_is_rejected(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"unknown extension '\.bin'"):
        load_checkpoint(_model(), path)


def test_save_requires_the_safetensors_extension(tmp_path):
    with pytest.raises(ValueError, match=r"must end in '\.safetensors'"):
        save_checkpoint(_model(), tmp_path / "model.pt")


def test_save_rejects_non_string_metadata(tmp_path):
    with pytest.raises(TypeError, match="metadata must map str to str"):
        save_checkpoint(_model(), tmp_path / "m.safetensors", metadata={"epoch": 3})


def test_mismatched_architecture_names_missing_and_unexpected_keys(tmp_path):
    path = save_checkpoint(_model("digits-cnn"), tmp_path / "digits.safetensors")
    target = _model("mnist-cnn")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(target, path)
    message = str(info.value)
    assert "missing keys" in message and "unexpected keys" in message
    assert "'net.1.weight'" in message  # digits-cnn's BatchNorm, absent from mnist-cnn
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_wrong_class_count_names_the_shape_mismatch(tmp_path):
    path = save_checkpoint(_model("digits-cnn"), tmp_path / "ten.safetensors")
    with pytest.raises(
        CheckpointMismatchError, match=r"net\.14\.weight: checkpoint \(10, 64\) vs model \(5, 64\)"
    ):
        load_checkpoint(_model("digits-cnn", num_classes=5), path)


def test_partial_state_dict_is_rejected(tmp_path):
    state = _model().state_dict()
    del state["normalize.mean"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointMismatchError, match=r"missing keys 'normalize\.mean'"):
        load_checkpoint(_model(), tmp_path / "partial.pt")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([torch.zeros(2)], "holds list"),
        ({"epoch": 3, "model": {"w": torch.zeros(2)}}, "not a state dict"),
        ({}, "non-empty state dict"),
    ],
)
def test_torch_files_without_a_state_dict_are_rejected(tmp_path, payload, match):
    torch.save(payload, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match=match):
        load_state_dict(tmp_path / "odd.pt")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_unreadable_files_are_a_value_error(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ValueError, match="could not read"):
        load_state_dict(path)
