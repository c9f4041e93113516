"""Tests of the dataset registry, on scikit-learn's digits and tiny files in real formats."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from robustbench_local.registry import UnknownNameError
from robustbench_local.zoo.datasets import (
    DATASETS,
    SPLIT_SEED,
    DatasetInfo,
    Split,
    data_fingerprint,
    dataset_info,
    load_dataset,
    load_tensors,
)

ALL = DATASETS.names()
FROM_FILES = [name for name in ALL if name != "digits"]
TORCHVISION = ["mnist", "fashion-mnist", "cifar10", "svhn"]


def test_registry_holds_the_documented_datasets():
    assert set(ALL) == {"digits", "mnist", "fashion-mnist", "cifar10", "svhn", "imagefolder"}


@pytest.mark.parametrize("name", ALL)
def test_info_is_consistent(name):
    info = dataset_info(name)
    assert isinstance(info, DatasetInfo)
    assert info.name == name
    channels = info.input_shape[0]
    assert len(info.input_shape) == 3
    assert len(info.mean) == len(info.std) == channels
    assert all(0 < s < 1 for s in info.std)
    assert all(0 < m < 1 for m in info.mean)
    if info.class_names is not None:
        assert len(info.class_names) == info.num_classes
    assert info.description


@pytest.mark.parametrize("name", ALL)
def test_every_split_loads_in_pixel_space(name, fake_source):
    source = fake_source(name)
    info = dataset_info(name)
    for split in ("train", "val", "test"):
        dataset = load_dataset(name, split, data_root=source.data_root)
        assert len(dataset) == source.sizes[split], split
        x, y = dataset[len(dataset) - 1]
        assert x.dtype == torch.float32
        # imagefolder's default image_size is the input shape it registers.
        assert tuple(x.shape) == info.input_shape
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert isinstance(y, int)
        assert 0 <= y < (info.num_classes or 2)


@pytest.mark.parametrize("name", FROM_FILES)
def test_test_split_equals_the_files_written(name, fake_source):
    source = fake_source(name)
    x, y = load_tensors(name, "test", data_root=source.data_root, **source.options)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x, source.test_x, rtol=0, atol=0)
    assert torch.equal(y, source.test_y)


@pytest.mark.parametrize("name", FROM_FILES)
def test_val_is_a_fixed_tenth_carved_from_train(name, fake_source):
    source = fake_source(name)
    train = load_dataset(name, Split.TRAIN, data_root=source.data_root)
    val = load_dataset(name, "val", data_root=source.data_root)
    assert isinstance(train, Subset) and isinstance(val, Subset)
    assert set(train.indices).isdisjoint(val.indices)
    assert sorted(train.indices + val.indices) == list(range(len(train.indices) + len(val.indices)))
    n_source, n_val = source.sizes["train"] + source.sizes["val"], source.sizes["val"]
    order = np.random.RandomState(SPLIT_SEED).permutation(n_source)
    expected_val = np.sort(order[:n_val]).tolist()
    assert val.indices == expected_val


@pytest.mark.parametrize("name", TORCHVISION)
def test_missing_files_name_the_folder_and_files(name, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, "test", data_root=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "download=True" in message
    expected = {
        "mnist": "MNIST/raw/t10k-images-idx3-ubyte",
        "fashion-mnist": "FashionMNIST/raw/t10k-images-idx3-ubyte",
        "cifar10": "cifar-10-batches-py/test_batch",
        "svhn": "test_32x32.mat",
    }[name]
    assert expected in message


@pytest.mark.parametrize("name", [*TORCHVISION, "imagefolder"])
def test_data_root_is_required(name):
    with pytest.raises(ValueError, match="data_root is required"):
        load_dataset(name, "test")


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_files_failing_torchvisions_md5_check_are_rejected(name, tmp_path, fake_writers):
    # Written without patching torchvision's md5 table, so its real integrity check must fail.
    fake_writers[name](tmp_path, None)
    with pytest.raises(ValueError, match="md5"):
        load_dataset(name, "test", data_root=tmp_path)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownNameError) as info:
        load_dataset("cifar-10", "test")
    message = str(info.value)
    assert "'cifar10'" in message.split("Available")[0]
    assert "'digits'" in message


def test_bad_split_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'train', 'val', 'test'") as info:
        load_dataset("digits", "validation")
    assert "'validation'" in str(info.value)


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="image_size"):
        load_dataset("digits", "test", image_size=16)


def test_digits_splits_partition_the_embedded_data():
    from sklearn.datasets import load_digits

    parts = [load_tensors("digits", split) for split in ("train", "val", "test")]
    assert [len(y) for _, y in parts] == [1077, 360, 360]
    x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    assert x.shape == (1797, 1, 8, 8)
    bunch = load_digits()
    scaled = torch.from_numpy(bunch.images / 16.0).to(torch.float32)[:, None]
    # Same multiset of (image, label): sort both by a key unique enough for 8x8 digits.
    ours = sorted(
        zip((x * 16).round().to(torch.int64).flatten(1).tolist(), y.tolist(), strict=True)
    )
    theirs = sorted(
        zip(
            (scaled * 16).round().to(torch.int64).flatten(1).tolist(),
            bunch.target.tolist(),
            strict=True,
        )
    )
    assert ours == theirs


def test_digits_split_is_fixed_and_stratified():
    x, y = load_tensors("digits", "test")
    # Pinned: a change here silently changes every stored digits result.
    assert y[:12].tolist() == [1, 4, 8, 6, 5, 9, 9, 1, 3, 2, 2, 2]
    counts = torch.bincount(y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    x_again, y_again = load_tensors("digits", "test")
    assert torch.equal(x, x_again) and torch.equal(y, y_again)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_digits_mean_std_are_those_of_its_train_split():
    x, _ = load_tensors("digits", "train")
    info = dataset_info("digits")
    assert float(x.mean()) == pytest.approx(info.mean[0], abs=1e-4)
    assert float(x.std()) == pytest.approx(info.std[0], abs=1e-4)


def test_load_tensors_subsets_are_seeded_and_nested():
    x_small, y_small = load_tensors("digits", "val", n_examples=20, seed=3)
    x_big, _ = load_tensors("digits", "val", n_examples=100, seed=3)
    x_again, _ = load_tensors("digits", "val", n_examples=20, seed=3)
    x_other, _ = load_tensors("digits", "val", n_examples=20, seed=4)
    assert x_small.shape == (20, 1, 8, 8) and y_small.shape == (20,)
    assert torch.equal(x_small, x_again)
    assert not torch.equal(x_small, x_other)
    big_rows = {tuple(row) for row in x_big.flatten(1).tolist()}
    assert all(tuple(row) in big_rows for row in x_small.flatten(1).tolist())


@pytest.mark.parametrize("n_examples", [0, -1, 2.5, True, 361])
def test_load_tensors_rejects_bad_sizes(n_examples):
    with pytest.raises(ValueError, match="n_examples"):
        load_tensors("digits", "test", n_examples=n_examples)


def test_imagefolder_resizes_to_image_size(tmp_path, fake_writers):
    source = fake_writers["imagefolder"](tmp_path)
    x, y = load_tensors("imagefolder", "test", data_root=tmp_path, image_size=(16, 12))
    assert x.shape == (6, 3, 16, 12)
    assert torch.equal(y, source.test_y)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_imagefolder_uses_a_val_folder_when_present(tmp_path, fake_writers):
    source = fake_writers["imagefolder"](tmp_path, splits=("train", "val", "test"))
    val = load_dataset("imagefolder", "val", data_root=tmp_path)
    train = load_dataset("imagefolder", "train", data_root=tmp_path)
    assert len(val) == source.sizes["val"] == 4
    assert len(train) == source.sizes["train"] == 10


def test_imagefolder_split_folders_must_share_classes(tmp_path, fake_writers):
    fake_writers["imagefolder"](tmp_path)
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(ValueError, match="same class folders"):
        load_dataset("imagefolder", "test", data_root=tmp_path)


def test_imagefolder_missing_split_folder(tmp_path, fake_writers):
    fake_writers["imagefolder"](tmp_path, splits=("train",))
    with pytest.raises(FileNotFoundError, match="'test'") as info:
        load_dataset("imagefolder", "test", data_root=tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("image_size", [0, (8,), "32", (8, -1)])
def test_imagefolder_rejects_bad_image_size(image_size, tmp_path, fake_writers):
    fake_writers["imagefolder"](tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("imagefolder", "test", data_root=tmp_path, image_size=image_size)


def test_imagefolder_cannot_download(tmp_path):
    with pytest.raises(ValueError, match="download"):
        load_dataset("imagefolder", "test", data_root=tmp_path, download=True)


def test_the_fingerprint_follows_the_training_files_content(tmp_path, fake_writers):
    source = fake_writers["imagefolder"](tmp_path / "mine", splits=("train", "val", "test"))
    root = source.data_root
    before = data_fingerprint("imagefolder", root)
    assert before.startswith("sha256:") and len(before) == len("sha256:") + 64

    # A copy elsewhere (new paths above data_root, new mtimes) is the same data.
    shutil.copytree(root, tmp_path / "copy")
    assert data_fingerprint("imagefolder", tmp_path / "copy") == before
    # The test split is not trained on: it does not enter the key.
    (root / "test" / "cat" / "0.png").write_bytes(b"changed")
    assert data_fingerprint("imagefolder", root) == before

    changed = []
    for edit in (
        lambda: (root / "val" / "dog" / "0.png").write_bytes(b"other pixels"),
        lambda: (root / "train" / "cat" / "1.png").rename(root / "train" / "dog" / "9.png"),
        lambda: (root / "train" / "cat" / "2.png").unlink(),
    ):
        edit()
        changed.append(data_fingerprint("imagefolder", root))
    assert len({before, *changed}) == 4


def test_only_the_users_files_have_a_fingerprint(fake_source):
    assert data_fingerprint("digits", None) == ""
    assert data_fingerprint("mnist", fake_source("mnist").data_root) == ""
    with pytest.raises(ValueError, match="data_root is required for dataset 'imagefolder'"):
        data_fingerprint("imagefolder", None)
