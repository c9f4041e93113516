"""Tiny dataset files in the real on-disk formats that torchvision reads.

Each writer puts a few random images where torchvision looks for them and returns what the test
split must load as, so the tests run the same code path as users with the real files:

- MNIST / Fashion-MNIST: uncompressed IDX files (big-endian magic ``0x0000 08 ndim``, then the
  dimensions as big-endian int32, then uint8 pixels) under ``<root>/MNIST/raw/`` or
  ``<root>/FashionMNIST/raw/``. torchvision checks only that they exist.
- CIFAR-10: python pickles ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` (dicts with
  ``data`` (n, 3072) uint8, channel-major rows, and ``labels``) and ``batches.meta`` (with
  ``label_names``) under ``<root>/cifar-10-batches-py/``.
- SVHN: MATLAB files ``<root>/train_32x32.mat`` / ``test_32x32.mat`` written by
  ``scipy.io.savemat`` with ``X`` (32, 32, 3, n) uint8 and ``y`` (n, 1) labels in 1..10 (10 is 0).
- imagefolder: PNG files ``<root>/<split>/<class>/<i>.png``.

torchvision verifies CIFAR-10 and SVHN files against md5 sums in class attributes
(``CIFAR10.train_list`` / ``test_list`` / ``meta``, ``SVHN.split_list``). The writers replace
those sums, for the test only (monkeypatch), with the md5 of the files they wrote, so
torchvision's integrity check still runs, unchanged, and passes for exactly these files.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tv_datasets

N_TRAIN = 20  # so "val" is int(0.1 * 20) = 2 examples and "train" 18
N_TEST = 10


@dataclass
class FakeSource:
    """What a writer made: pass data_root/options to the loaders, expect sizes and test_x/y.

    test_x is float32 (N, C, H, W) in [0, 1] and test_y int64 (N,), in dataset order.
    """

    data_root: Path | None
    sizes: dict[str, int]
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    options: dict[str, object] = field(default_factory=dict)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _random_images(seed: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1], the way ToTensor scales."""
    return torch.from_numpy(images).to(torch.float32).div(255)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of the MNIST files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + array.tobytes())


def _write_mnist_like(root: Path, folder: str) -> FakeSource:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    train = _random_images(1, N_TRAIN, (28, 28))
    test = _random_images(2, N_TEST, (28, 28))
    train_y = np.arange(N_TRAIN, dtype=np.uint8) % 10
    test_y = (np.arange(N_TEST, dtype=np.uint8) * 3) % 10
    write_idx(raw / "train-images-idx3-ubyte", train)
    write_idx(raw / "train-labels-idx1-ubyte", train_y)
    write_idx(raw / "t10k-images-idx3-ubyte", test)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y)
    return FakeSource(
        data_root=root,
        sizes={"train": N_TRAIN - 2, "val": 2, "test": N_TEST},
        test_x=_pixels(test[:, None]),
        test_y=torch.from_numpy(test_y.astype(np.int64)),
    )


_CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def write_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch | None) -> FakeSource:
    """CIFAR-10 pickles; with monkeypatch, torchvision's md5 table is set to these files."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = N_TRAIN // 5
    test = _random_images(4, N_TEST, (3, 32, 32))
    test_y = [(7 * i) % 10 for i in range(N_TEST)]
    batches = {
        f"data_batch_{b + 1}": (
            _random_images(10 + b, per_batch, (3, 32, 32)),
            [(b + i) % 10 for i in range(per_batch)],
        )
        for b in range(5)
    }
    batches["test_batch"] = (test, test_y)
    for filename, (images, labels) in batches.items():
        entry = {
            "batch_label": filename,
            "labels": labels,
            "data": images.reshape(len(images), 3 * 32 * 32),
            "filenames": [f"{filename}_{i}.png" for i in range(len(images))],
        }
        (folder / filename).write_bytes(pickle.dumps(entry))
    meta = {"label_names": list(_CIFAR_CLASSES), "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    if monkeypatch is not None:
        cls = tv_datasets.CIFAR10
        sums = {name: _md5(folder / name) for name in [*batches, "batches.meta"]}
        train_list = [[f"data_batch_{b + 1}", sums[f"data_batch_{b + 1}"]] for b in range(5)]
        monkeypatch.setattr(cls, "train_list", train_list)
        monkeypatch.setattr(cls, "test_list", [["test_batch", sums["test_batch"]]])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": sums["batches.meta"]})
    return FakeSource(
        data_root=root,
        sizes={"train": N_TRAIN - 2, "val": 2, "test": N_TEST},
        test_x=_pixels(test),
        test_y=torch.tensor(test_y, dtype=torch.int64),
    )


def write_svhn(root: Path, monkeypatch: pytest.MonkeyPatch | None) -> FakeSource:
    """SVHN .mat files; with monkeypatch, torchvision's md5 table is set to these files."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    images = {
        "train": _random_images(5, N_TRAIN, (3, 32, 32)),
        "test": _random_images(6, N_TEST, (3, 32, 32)),
    }
    # SVHN stores the digit 0 as label 10; every label 1..10 appears in the test file.
    labels = {split: (np.arange(len(x)) % 10 + 1).astype(np.uint8) for split, x in images.items()}
    for split, x in images.items():
        # .mat layout: X is (H, W, C, N), y is (N, 1).
        savemat(
            root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": labels[split][:, None]}
        )
    if monkeypatch is not None:
        table = {key: list(value) for key, value in tv_datasets.SVHN.split_list.items()}
        for split in images:
            table[split][2] = _md5(root / f"{split}_32x32.mat")
        monkeypatch.setattr(tv_datasets.SVHN, "split_list", table)
    return FakeSource(
        data_root=root,
        sizes={"train": N_TRAIN - 2, "val": 2, "test": N_TEST},
        test_x=_pixels(images["test"]),
        test_y=torch.from_numpy(labels["test"].astype(np.int64) % 10),
    )


def write_imagefolder(
    root: Path, *, splits: tuple[str, ...] = ("train", "test"), size: int = 8
) -> FakeSource:
    """PNG images, two classes; the test split's expected tensors are in ImageFolder's order."""
    expected_x: list[np.ndarray] = []
    expected_y: list[int] = []
    counts = {"train": 5, "val": 2, "test": 3}
    for split in splits:
        for label, class_name in enumerate(("cat", "dog")):
            folder = root / split / class_name
            folder.mkdir(parents=True)
            images = _random_images(20 + label + 7 * len(split), counts[split], (size, size, 3))
            for i, image in enumerate(images):
                Image.fromarray(image, mode="RGB").save(folder / f"{i}.png")
                if split == "test":
                    expected_x.append(image.transpose(2, 0, 1))
                    expected_y.append(label)
    sizes = {split: 2 * counts[split] for split in splits}
    if "val" not in splits:
        sizes["val"] = int(0.1 * sizes["train"])
        sizes["train"] -= sizes["val"]
    return FakeSource(
        data_root=root,
        sizes=sizes,
        test_x=_pixels(np.stack(expected_x)) if expected_x else None,
        test_y=torch.tensor(expected_y, dtype=torch.int64),
        options={"image_size": size},
    )


def _write_digits(root: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSource:
    # Embedded in scikit-learn: nothing to write, and no expected tensors to compare against.
    return FakeSource(data_root=None, sizes={"train": 1077, "val": 360, "test": 360})


_WRITERS: dict[str, Callable[[Path, pytest.MonkeyPatch], FakeSource]] = {
    "digits": _write_digits,
    "mnist": lambda root, _: _write_mnist_like(root, "MNIST"),
    "fashion-mnist": lambda root, _: _write_mnist_like(root, "FashionMNIST"),
    "cifar10": write_cifar10,
    "svhn": write_svhn,
    "imagefolder": lambda root, _: write_imagefolder(root),
}


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FakeSource]:
    """make(name): write tiny files for registered dataset name under tmp_path."""

    def make(name: str) -> FakeSource:
        if name not in _WRITERS:
            pytest.fail(f"conftest has no fake-file writer for registered dataset {name!r}")
        return _WRITERS[name](tmp_path / name, monkeypatch)

    return make


@pytest.fixture
def fake_writers() -> dict[str, Callable[..., FakeSource]]:
    """Writers for tests that need control over md5 patching or the folder layout."""
    return {"cifar10": write_cifar10, "svhn": write_svhn, "imagefolder": write_imagefolder}
