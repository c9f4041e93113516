"""Tests of the checkpoint cache: reuse without retraining, keys, corruption, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

import robustbench_local.atomic as atomic
import robustbench_local.zoo.cache as cache
import robustbench_local.zoo.training.spec as spec_module
from robustbench_local.zoo.cache import (
    CacheError,
    cache_paths,
    default_cache_dir,
    load_cached,
    load_or_train,
)
from robustbench_local.zoo.checkpoints import read_checkpoint_metadata, save_checkpoint
from robustbench_local.zoo.models import create_model
from robustbench_local.zoo.training import TrainSpec, default_spec, train_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(**overrides: object) -> TrainSpec:
    return default_spec("digits-cnn", "digits", "standard", **{"epochs": 1, **overrides})


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class TrainerSpy:
    """Stands in for train_model: counts calls, and fails the test if training is forbidden."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.calls = 0

    def __call__(self, spec: TrainSpec, **kwargs: object):
        self.calls += 1
        if not self.allowed:
            pytest.fail(f"train_model ran for {spec}; the cache should have been used")
        return train_model(spec, **kwargs)


@pytest.fixture
def trainer(monkeypatch: pytest.MonkeyPatch):
    """Install a TrainerSpy; call it with allowed=True or False."""

    def install(allowed: bool) -> TrainerSpy:
        spy = TrainerSpy(allowed)
        monkeypatch.setattr(cache, "train_model", spy)
        return spy

    return install


def test_second_call_loads_the_cache_without_training(tmp_path, trainer) -> None:
    spec = _spec()
    spy = trainer(allowed=True)
    first, first_result, cached = load_or_train(spec, cache_dir=tmp_path)
    assert not cached and spy.calls == 1
    trainer(allowed=False)
    torch.manual_seed(0)
    rng = torch.get_rng_state()
    second, second_result, cached = load_or_train(spec, cache_dir=tmp_path)
    assert cached and second_result == first_result
    assert _same_weights(first, second)
    assert not any(module.training for module in second.modules())
    assert torch.equal(torch.get_rng_state(), rng)  # building the model drew no global numbers
    assert load_cached(spec, cache_dir=tmp_path)[1] == first_result


def test_sidecar_and_header_hold_the_spec_and_results(tmp_path) -> None:
    spec = _spec(seed=2)
    _, result, _ = load_or_train(spec, cache_dir=tmp_path)
    paths = cache_paths(spec, tmp_path)
    assert paths.weights.parent == tmp_path / "models" / "digits" / "digits-cnn"
    assert paths.weights.name == f"standard-seed2-{spec.key()[:16]}.safetensors"
    sidecar = json.loads(paths.sidecar.read_text())
    assert sidecar["spec"] == spec.to_dict() and sidecar["key"] == spec.key()
    assert TrainSpec.from_dict(sidecar["spec"]) == spec
    assert sidecar["result"] == result.to_dict()
    assert sidecar["result"]["val_accuracy"] == result.val_accuracy
    assert sidecar["result"]["wall_time_s"] > 0
    assert sidecar["key_material"]["recipe_version"] == spec_module.RECIPE_VERSION
    header = read_checkpoint_metadata(paths.weights)
    assert header["rbl_key"] == spec.key()
    assert json.loads(header["rbl_entry"]) == sidecar


def test_default_cache_dir_honours_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RBL_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    spec = _spec()
    load_or_train(spec)
    assert cache_paths(spec).weights.is_file()
    assert cache_paths(spec).weights.is_relative_to(tmp_path / "mine")
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv("RBL_CACHE_DIR")
        else:
            monkeypatch.setenv("RBL_CACHE_DIR", unset)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert default_cache_dir() == tmp_path / "home" / ".cache" / "robustbench-local"


# One other valid value per TrainSpec field, from a pgd_at spec on mnist (so that the dataset
# and recipe can change alone, with attack_steps=1 allowing fgsm_rs).
_BASE = dict(zoo="mnist-cnn", dataset="mnist", recipe="pgd_at", attack_steps=1, step_size=0.375)
_CHANGED = {
    "zoo": "mnist-cnn-dropout",
    "dataset": "fashion-mnist",
    "recipe": "fgsm_rs",
    "seed": 1,
    "num_classes": 10,  # the base uses 10 too: see the override below
    "mean": (0.2,),
    "std": (0.5,),
    "epochs": 3,
    "batch_size": 32,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.5,
    "weight_decay": 1e-4,
    "schedule": "constant",
    "augment": "crop",
    "eps": 0.25,
    "attack_steps": 2,
    "step_size": 0.3,
    "data_fingerprint": "sha256:0",  # only for imagefolder: see its own test below
}


def _key_base() -> TrainSpec:
    return TrainSpec(
        seed=0,
        num_classes=10,
        mean=(0.1307,),
        std=(0.3081,),
        epochs=2,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        momentum=0.9,
        weight_decay=0.0,
        schedule="cosine",
        augment="none",
        eps=0.3,
        **_BASE,
    )


def test_the_key_test_covers_every_spec_field() -> None:
    assert set(_CHANGED) == {field.name for field in dataclasses.fields(TrainSpec)}


@pytest.mark.parametrize("field", sorted(set(_CHANGED) - {"num_classes", "data_fingerprint"}))
def test_a_change_to_any_single_field_changes_the_key(field, tmp_path) -> None:
    base = _key_base()
    assert getattr(base, field) != _CHANGED[field]
    changed = dataclasses.replace(base, **{field: _CHANGED[field]})
    assert changed.key() != base.key()
    assert cache_paths(changed, tmp_path).weights != cache_paths(base, tmp_path).weights


def test_num_classes_is_in_the_key() -> None:
    # digits and mnist fix K = 10; imagefolder lets it vary.
    three = default_spec("cifar-resnet18", "imagefolder", "standard", num_classes=3)
    four = dataclasses.replace(three, num_classes=4)
    assert three.key() != four.key()


def test_the_data_fingerprint_is_in_the_key_and_only_for_the_users_files() -> None:
    mine = default_spec("cifar-resnet18", "imagefolder", "standard", num_classes=3)
    assert mine.data_fingerprint == ""  # filled in from data_root by the cache
    first = dataclasses.replace(mine, data_fingerprint="sha256:aa")
    second = dataclasses.replace(mine, data_fingerprint="sha256:bb")
    assert len({mine.key(), first.key(), second.key()}) == 3
    with pytest.raises(ValueError, match=r"data_fingerprint must be empty for dataset 'mnist'"):
        dataclasses.replace(_key_base(), data_fingerprint="sha256:aa")


def test_key_covers_recipe_version_torch_and_architecture(monkeypatch) -> None:
    spec = _key_base()
    key = spec.key()
    assert len(key) == 64 and int(key, 16) >= 0
    assert _key_base().key() == key  # stable for an equal spec
    assert dataclasses.replace(spec, lr=1e-3).key() == key
    assert TrainSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).key() == key
    assert set(spec.key_material()) == {"spec", "recipe_version", "torch", "architecture"}
    monkeypatch.setattr(spec_module, "RECIPE_VERSION", spec_module.RECIPE_VERSION + 1)
    assert spec.key() != key
    monkeypatch.undo()
    monkeypatch.setattr(spec_module, "torch_major_minor", lambda: "1.0")
    assert spec.key() != key


def test_equal_specs_integer_floats_and_ensemble_members_share_a_key() -> None:
    assert _spec(lr=1).key() == _spec(lr=1.0).key()
    member = default_spec("digits-cnn", "digits", "standard", seed=0)
    assert member.key() == default_spec("digits-cnn", "digits", "standard").key()


def _truncate(paths: cache.CachePaths) -> None:
    data = paths.weights.read_bytes()
    paths.weights.write_bytes(data[: len(data) // 2])


def _garbage(paths: cache.CachePaths) -> None:
    paths.weights.write_bytes(b"\x00not a safetensors file" * 10)


def _plain_checkpoint(paths: cache.CachePaths) -> None:
    torch.manual_seed(0)
    save_checkpoint(create_model("digits-cnn"), paths.weights)  # no cache metadata


def _other_spec_entry(paths: cache.CachePaths, tmp_path: Path) -> None:
    other = _spec(seed=9)
    load_or_train(other, cache_dir=tmp_path)
    paths.weights.write_bytes(cache_paths(other, tmp_path).weights.read_bytes())


def _bad_sidecar(paths: cache.CachePaths) -> None:
    paths.sidecar.write_text("{ not json")


def _other_spec_sidecar(paths: cache.CachePaths) -> None:
    entry = json.loads(paths.sidecar.read_text())
    entry["spec"]["lr"] = 0.5
    paths.sidecar.write_text(json.dumps(entry))


def _wrong_tensors(paths: cache.CachePaths) -> None:
    header = read_checkpoint_metadata(paths.weights)
    torch.manual_seed(0)
    save_checkpoint(
        create_model("digits-cnn-dropout", num_classes=9), paths.weights, metadata=header
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, r"is corrupt or not a robustbench-local entry"),
        (_garbage, r"is corrupt or not a robustbench-local entry"),
        (_plain_checkpoint, r"is corrupt or not a robustbench-local entry"),
        (_other_spec_entry, r"holds key"),
        (_bad_sidecar, r"sidecar .* is corrupt"),
        (_other_spec_sidecar, r"written for another spec.*lr: expected 0.003, found 0.5"),
        (_wrong_tensors, r"could not be loaded .*CheckpointMismatchError"),
    ],
    ids=[
        "truncated",
        "garbage",
        "plain-checkpoint",
        "other-spec-entry",
        "bad-sidecar",
        "other-spec-sidecar",
        "wrong-tensors",
    ],
)
def test_a_damaged_entry_raises_a_clear_error_instead_of_retraining(
    damage, message, tmp_path, trainer
) -> None:
    spec = _spec()
    load_or_train(spec, cache_dir=tmp_path)
    paths = cache_paths(spec, tmp_path)
    if damage is _other_spec_entry:
        damage(paths, tmp_path)
    else:
        damage(paths)
    spy = trainer(allowed=False)
    with pytest.raises(CacheError, match=message) as err:
        load_or_train(spec, cache_dir=tmp_path)
    assert str(paths.weights) in str(err.value) and "retrain=True" in str(err.value)
    assert spy.calls == 0


def test_retrain_overwrites_a_damaged_entry(tmp_path, trainer) -> None:
    spec = _spec()
    original, _, _ = load_or_train(spec, cache_dir=tmp_path)
    paths = cache_paths(spec, tmp_path)
    _truncate(paths)
    spy = trainer(allowed=True)
    model, _, cached = load_or_train(spec, cache_dir=tmp_path, retrain=True)
    assert not cached and spy.calls == 1
    assert _same_weights(model, original)  # deterministic: the same weights again
    trainer(allowed=False)
    again, _, cached = load_or_train(spec, cache_dir=tmp_path)
    assert cached and _same_weights(again, original)


def test_retrain_overwrites_a_healthy_entry(tmp_path, trainer) -> None:
    spec = _spec()
    _, first, _ = load_or_train(spec, cache_dir=tmp_path)
    spy = trainer(allowed=True)
    _, second, cached = load_or_train(spec, cache_dir=tmp_path, retrain=True)
    assert not cached and spy.calls == 1
    stored = json.loads(cache_paths(spec, tmp_path).sidecar.read_text())
    assert stored["result"]["created"] == second.created
    assert stored["result"]["wall_time_s"] == second.wall_time_s != first.wall_time_s


def test_missing_sidecar_is_rewritten_from_the_weights(tmp_path, trainer) -> None:
    spec = _spec()
    load_or_train(spec, cache_dir=tmp_path)
    paths = cache_paths(spec, tmp_path)
    written = json.loads(paths.sidecar.read_text())
    paths.sidecar.unlink()
    trainer(allowed=False)
    _, _, cached = load_or_train(spec, cache_dir=tmp_path)
    assert cached and json.loads(paths.sidecar.read_text()) == written


def test_orphan_sidecar_without_weights_is_a_miss(tmp_path, trainer) -> None:
    spec = _spec()
    paths = cache_paths(spec, tmp_path)
    paths.sidecar.parent.mkdir(parents=True)
    paths.sidecar.write_text("left over after the weights were deleted")
    assert load_cached(spec, cache_dir=tmp_path) is None
    spy = trainer(allowed=True)
    _, _, cached = load_or_train(spec, cache_dir=tmp_path)
    assert not cached and spy.calls == 1
    assert json.loads(paths.sidecar.read_text())["key"] == spec.key()


def test_a_crash_while_writing_leaves_no_entry(tmp_path, monkeypatch) -> None:
    spec = _spec()

    def crash(path: Path, data: bytes) -> None:
        path.write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(atomic, "_write_file", crash)
    with pytest.raises(KeyboardInterrupt):
        load_or_train(spec, cache_dir=tmp_path)
    paths = cache_paths(spec, tmp_path)
    assert list(paths.weights.parent.iterdir()) == []  # no entry and no temporary file
    monkeypatch.undo()
    _, _, cached = load_or_train(spec, cache_dir=tmp_path)
    assert not cached and load_cached(spec, cache_dir=tmp_path) is not None


def test_racing_writers_leave_one_whole_entry(tmp_path, monkeypatch) -> None:
    """Writer A has written its temporary file when writer B writes the whole entry; then A
    renames. The cache must hold A's complete entry, its sidecar in line, no stray files."""
    spec = _spec()
    model_a, result_a = train_model(spec)
    model_b, result_b = train_model(dataclasses.replace(spec, seed=1))
    result_b = dataclasses.replace(result_b, key=spec.key())
    paths = cache_paths(spec, tmp_path)
    a_has_written, b_is_done = threading.Event(), threading.Event()
    real_write = atomic._write_file
    writer_a_thread: list[threading.Thread] = []

    def paused_write(path: Path, data: bytes) -> None:
        real_write(path, data)
        # A pauses after writing its weights' temporary file (its first write), before the
        # rename; its sidecar is written after B is done, so it does not wait again.
        if threading.current_thread() in writer_a_thread and not a_has_written.is_set():
            a_has_written.set()
            assert b_is_done.wait(timeout=30)

    monkeypatch.setattr(atomic, "_write_file", paused_write)
    writer_a = threading.Thread(target=cache._store, args=(spec, model_a, result_a, paths))
    writer_a_thread.append(writer_a)
    writer_a.start()
    assert a_has_written.wait(timeout=30)
    cache._store(spec, model_b, result_b, paths)
    b_is_done.set()
    writer_a.join(timeout=30)
    loaded, result = load_cached(spec, cache_dir=tmp_path)
    # A renamed last, so the weights are A's, and so is the sidecar written after them.
    assert _same_weights(loaded, model_a) and result == result_a
    assert json.loads(paths.sidecar.read_text())["result"] == result_a.to_dict()
    assert sorted(p.name for p in paths.weights.parent.iterdir()) == sorted(
        [paths.weights.name, paths.sidecar.name]
    )


def test_load_or_train_rejects_bad_arguments(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"spec must be a TrainSpec; got str"):
        load_or_train("digits-cnn", cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"retrain must be a bool; got 'yes'"):
        load_or_train(_spec(), cache_dir=tmp_path, retrain="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"cache_dir must be a path or None; got int"):
        load_or_train(_spec(), cache_dir=3)  # type: ignore[arg-type]
