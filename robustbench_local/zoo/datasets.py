"""The dataset registry: named datasets in pixel space, with fixed seeded splits.

Every dataset yields ``(x, y)`` with x a float32 tensor of shape (C, H, W) in [0, 1] and y an
int class index; normalisation is left to the model's ``Normalize`` layer (`dataset_info` gives
the mean/std it should use). Splits are "train", "val" and "test". Where the source has no
validation split, "val" is a fixed seeded 10% of the source's training set and "train" the
other 90%, so the two never overlap.

Registered datasets and their split sizes:

- ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, shipped with scikit-learn, so
  it works offline. Pixels 0..16 are scaled to [0, 1]; shape (1, 8, 8). A fixed stratified split
  (scikit-learn ``train_test_split``, random_state 0): train 1,077 / val 360 / test 360.
- ``mnist``, ``fashion-mnist`` (1, 28, 28): 54,000 / 6,000 / 10,000. Files as torchvision
  expects them: ``<data_root>/MNIST/raw/`` (or ``FashionMNIST/raw/``) holding the four
  uncompressed IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
- ``cifar10`` (3, 32, 32): 45,000 / 5,000 / 10,000, from ``<data_root>/cifar-10-batches-py/``
  (the python pickle batches ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
  ``batches.meta``).
- ``svhn`` (3, 32, 32): 65,932 / 7,325 / 26,032, from ``<data_root>/train_32x32.mat`` and
  ``<data_root>/test_32x32.mat``. SVHN's label 10 (digit 0) becomes 0.
- ``imagefolder``: the user's own images, ``<data_root>/<split>/<class name>/<image file>``,
  one folder per class (torchvision ``ImageFolder``), converted to RGB and resized to
  ``image_size`` (default 32, giving (3, 32, 32)). Without a ``val`` folder, "val" is carved from
  ``train`` as above.

torchvision checks the md5 sums of the CIFAR-10 and SVHN files it loads. Nothing is downloaded
unless ``download=True``; with files missing the error names the folder and the files expected.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchvision import datasets as tv_datasets
from torchvision import transforms
from torchvision.datasets.folder import find_classes

from robustbench_local.registry import Registry, parse_option

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "NotEnoughExamples",
    "Split",
    "class_names",
    "count_classes",
    "data_fingerprint",
    "dataset_info",
    "load_dataset",
    "load_tensors",
]

# Fraction of a source's training set held out as "val" where the source has none.
VAL_FRACTION = 0.1
SPLIT_SEED = 0


class Split(str, Enum):
    """A dataset split."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about a registered dataset.

    Args:
        name: the registered name.
        input_shape: (C, H, W) of one example (for ``imagefolder``: at the default image_size).
        num_classes: number of classes K, or None where it depends on the user's files.
        class_names: K names in label order, or None where unknown.
        mean: per-channel mean (C,) for the model's Normalize layer.
        std: per-channel standard deviation (C,) for the model's Normalize layer.
        source: where the data comes from.
        description: one line for listings.
        user_files: the content is whatever files the user points data_root at (not fixed by
            the name), so a trained model's cache key must include `data_fingerprint`.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int | None
    class_names: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    description: str
    user_files: bool = False


class NotEnoughExamples(ValueError):
    """More examples asked for than a split holds.

    Attributes:
        dataset, split: where they were asked for.
        requested: how many were asked for; available: how many the split holds.
    """

    def __init__(self, dataset: str, split: str, requested: int, available: int) -> None:
        super().__init__(
            f"n_examples={requested} exceeds the {available} examples of dataset {dataset!r} "
            f"split {split!r}"
        )
        self.dataset, self.split = dataset, split
        self.requested, self.available = requested, available


DatasetLoader = Callable[..., Dataset]
"""``loader(split: Split, data_root: Path | None, download: bool, **options) -> Dataset``."""

DATASETS: Registry[DatasetLoader] = Registry("dataset")


def _dataset(name: str, **metadata: Any) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register a loader under name; metadata holds the `DatasetInfo` fields other than name."""
    DatasetInfo(name=name, **metadata)  # fails at import if a field is missing or misspelt
    return DATASETS.register(name, **metadata)


_TO_TENSOR = transforms.ToTensor()  # PIL image (H, W, C) uint8 -> float32 (C, H, W) in [0, 1]
_DIGITS = tuple(str(digit) for digit in range(10))


class _TensorImages(Dataset):
    """Images held in memory: x (N, C, H, W) float32, y (N,) int64; yields (x[i], int(y[i]))."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.y[index])


def _carve_val(train: Dataset, split: Split) -> Dataset:
    """The fixed seeded val part (VAL_FRACTION) of train for split VAL, the rest for TRAIN."""
    n = len(train)
    # RandomState, not Generator: its stream is frozen across numpy versions, so the split is too.
    order = np.random.RandomState(SPLIT_SEED).permutation(n)
    n_val = int(n * VAL_FRACTION)
    chosen = order[:n_val] if split is Split.VAL else order[n_val:]
    return Subset(train, np.sort(chosen).tolist())


def _require_root(name: str, data_root: Path | None) -> Path:
    if data_root is None:
        raise ValueError(
            f"data_root is required for dataset {name!r}: pass the folder that holds (or, with "
            f"download=True, should receive) its files; got None"
        )
    return data_root


def _require_files(name: str, data_root: Path, expected: Sequence[Path], download: bool) -> None:
    """Raise FileNotFoundError naming data_root and the missing files unless downloading."""
    if download:
        return
    missing = [path for path in expected if not path.is_file()]
    if missing:
        listing = ", ".join(str(path.relative_to(data_root)) for path in missing)
        raise FileNotFoundError(
            f"dataset {name!r} not found in data_root {str(data_root)!r}: missing {listing}. "
            f"Either pass download=True (--download) on a machine with network access, or place "
            f"the files at those paths under {str(data_root)!r}."
        )


def _torchvision(
    name: str, data_root: Path, download: bool, build: Callable[[], Dataset]
) -> Dataset:
    """Run a torchvision constructor, rewording its RuntimeError (missing, corrupted, download)."""
    try:
        return build()
    except RuntimeError as err:
        raise ValueError(
            f"torchvision could not load dataset {name!r} from data_root {str(data_root)!r} "
            f"(download={download}): {err}. If the files are present they may be truncated or "
            f"corrupted (torchvision checks the md5 sums of CIFAR-10 and SVHN files); replace "
            f"them, or pass download=True "
            f"with network access."
        ) from err


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, dict[Split, np.ndarray]]:
    """All digits as x (1797, 1, 8, 8) float32 in [0, 1], y (1797,) int64, and split indices."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=360, stratify=y, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=360, stratify=y[rest], random_state=SPLIT_SEED)
    splits = {Split.TRAIN: np.sort(train), Split.VAL: np.sort(val), Split.TEST: np.sort(test)}
    return x, y, splits


@_dataset(
    "digits",
    input_shape=(1, 8, 8),
    num_classes=10,
    class_names=_DIGITS,
    mean=(0.3053,),
    std=(0.3760,),
    source="scikit-learn load_digits (embedded, offline)",
    description="1,797 real 8x8 handwritten digits; train 1,077 / val 360 / test 360",
)
def _load_digits(split: Split, data_root: Path | None, download: bool) -> Dataset:
    # Shipped inside scikit-learn: data_root and download do not apply.
    x, y, splits = _digits_arrays()
    index = splits[split]
    return _TensorImages(torch.from_numpy(x[index]), torch.from_numpy(y[index]))


def _mnist_like(
    name: str, cls: type[tv_datasets.MNIST], split: Split, data_root: Path | None, download: bool
) -> Dataset:
    root = _require_root(name, data_root)
    raw = root / cls.__name__ / "raw"
    # torchvision checks for all four uncompressed files, whichever split is asked for.
    expected = [raw / Path(filename).stem for filename, _ in cls.resources]
    _require_files(name, root, expected, download)
    train = split is not Split.TEST
    dataset = _torchvision(
        name,
        root,
        download,
        lambda: cls(root, train=train, transform=_TO_TENSOR, download=download),
    )
    return _carve_val(dataset, split) if train else dataset


@_dataset(
    "mnist",
    input_shape=(1, 28, 28),
    num_classes=10,
    class_names=_DIGITS,
    mean=(0.1307,),
    std=(0.3081,),
    source="torchvision MNIST",
    description="MNIST handwritten digits; train 54,000 / val 6,000 / test 10,000",
)
def _load_mnist(split: Split, data_root: Path | None, download: bool) -> Dataset:
    return _mnist_like("mnist", tv_datasets.MNIST, split, data_root, download)


@_dataset(
    "fashion-mnist",
    input_shape=(1, 28, 28),
    num_classes=10,
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mean=(0.2860,),
    std=(0.3530,),
    source="torchvision FashionMNIST",
    description="Fashion-MNIST clothing images; train 54,000 / val 6,000 / test 10,000",
)
def _load_fashion_mnist(split: Split, data_root: Path | None, download: bool) -> Dataset:
    return _mnist_like("fashion-mnist", tv_datasets.FashionMNIST, split, data_root, download)


@_dataset(
    "cifar10",
    input_shape=(3, 32, 32),
    num_classes=10,
    class_names=(
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
    ),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    source="torchvision CIFAR10",
    description="CIFAR-10 natural images; train 45,000 / val 5,000 / test 10,000",
)
def _load_cifar10(split: Split, data_root: Path | None, download: bool) -> Dataset:
    cls = tv_datasets.CIFAR10
    root = _require_root("cifar10", data_root)
    folder = root / cls.base_folder
    filenames = [filename for filename, _ in cls.train_list + cls.test_list]
    expected = [folder / filename for filename in [*filenames, cls.meta["filename"]]]
    _require_files("cifar10", root, expected, download)
    train = split is not Split.TEST
    dataset = _torchvision(
        "cifar10",
        root,
        download,
        lambda: cls(root, train=train, transform=_TO_TENSOR, download=download),
    )
    return _carve_val(dataset, split) if train else dataset


@_dataset(
    "svhn",
    input_shape=(3, 32, 32),
    num_classes=10,
    class_names=_DIGITS,
    mean=(0.4377, 0.4438, 0.4728),
    std=(0.1980, 0.2010, 0.1970),
    source="torchvision SVHN (needs scipy)",
    description="SVHN house-number digits; train 65,932 / val 7,325 / test 26,032",
)
def _load_svhn(split: Split, data_root: Path | None, download: bool) -> Dataset:
    cls = tv_datasets.SVHN
    root = _require_root("svhn", data_root)
    source_split = "test" if split is Split.TEST else "train"
    _require_files("svhn", root, [root / cls.split_list[source_split][1]], download)
    dataset = _torchvision(
        "svhn",
        root,
        download,
        lambda: cls(root, split=source_split, transform=_TO_TENSOR, download=download),
    )
    return dataset if split is Split.TEST else _carve_val(dataset, split)


def _image_size(value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return (value[0], value[1])
    raise ValueError(
        f"image_size must be a positive int or a (height, width) pair of positive ints; "
        f"got {value!r}"
    )


@_dataset(
    "imagefolder",
    input_shape=(3, 32, 32),
    num_classes=None,
    class_names=None,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    source="torchvision ImageFolder over the user's files",
    user_files=True,
    description="your images: <data_root>/<split>/<class>/<image>, RGB, resized to image_size",
)
def _load_imagefolder(
    split: Split, data_root: Path | None, download: bool, *, image_size: int | Sequence[int] = 32
) -> Dataset:
    size = _image_size(image_size)
    if download:
        raise ValueError(
            "download=True does not apply to dataset 'imagefolder': it reads your own files"
        )
    root = _require_root("imagefolder", data_root)
    # Without a val folder, "val" and "train" are the two parts of the train folder.
    carve = split is not Split.TEST and not (root / "val").is_dir()
    folder = root / ("train" if carve else split.value)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"dataset 'imagefolder' split {split.value!r} not found in data_root {str(root)!r}: "
            f"missing folder {folder.name!r}. Expected <data_root>/<split>/<class name>/<image> "
            f"with split in train, val (optional: else carved from train), test."
        )
    _imagefolder_classes(root)  # the split folders must agree on their classes
    transform = transforms.Compose([transforms.Resize(size), _TO_TENSOR])
    dataset = tv_datasets.ImageFolder(str(folder), transform=transform)
    return _carve_val(dataset, split) if carve else dataset


def _imagefolder_classes(root: Path) -> tuple[str, ...]:
    """The class names of an image folder: the sorted subfolders of each of its split folders.

    Raises:
        FileNotFoundError: no split folder (train, val, test) under root.
        ValueError: split folders with different class folders, or none.
    """
    present = [root / s.value for s in Split if (root / s.value).is_dir()]
    if not present:
        raise FileNotFoundError(
            f"dataset 'imagefolder' not found in data_root {str(root)!r}: it has none of the "
            f"folders train, val, test. Expected <data_root>/<split>/<class name>/<image>."
        )
    try:
        class_lists = {path.name: find_classes(str(path))[0] for path in present}
    except FileNotFoundError as err:  # torchvision's "Couldn't find any class folder in ..."
        raise ValueError(f"dataset 'imagefolder' in data_root {str(root)!r}: {err}") from err
    if len({tuple(classes) for classes in class_lists.values()}) > 1:
        # ImageFolder numbers classes per folder, so differing folders would swap labels.
        raise ValueError(
            f"dataset 'imagefolder' in data_root {str(root)!r}: every split folder must hold the "
            f"same class folders; got {class_lists}"
        )
    return tuple(next(iter(class_lists.values())))


def class_names(name: str, data_root: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The K class names of a dataset in label order (an image folder's class folders), or
    the labels "0" .. "K-1" where the dataset has none.

    Raises:
        ValueError / FileNotFoundError: as `count_classes`.
    """
    info = dataset_info(name)
    if info.class_names is not None:
        return tuple(info.class_names)
    if info.num_classes is not None:
        return tuple(str(k) for k in range(info.num_classes))
    return _imagefolder_classes(_require_root(name, _as_root(data_root)))


def count_classes(name: str, data_root: str | os.PathLike[str] | None = None) -> int:
    """The number of classes K of a dataset, read from the user's files where they define it.

    Args:
        name: a registered dataset name.
        data_root: the dataset's folder; needed only where `DatasetInfo.num_classes` is None
            (``imagefolder``, whose class folders are its classes).

    Returns:
        K (>= 1).

    Raises:
        ValueError / FileNotFoundError: no data_root, or no class folders in it.
    """
    return len(class_names(name, data_root))


def dataset_info(name: str) -> DatasetInfo:
    """The facts registered for a dataset.

    Args:
        name: a registered dataset name (see ``DATASETS.names()``).

    Returns:
        its `DatasetInfo` (input shape (C, H, W), num_classes, class names, mean/std (C,)).
    """
    return DatasetInfo(name=name, **DATASETS.metadata(name))


# The splits a model is trained and validated on: what its cache key must see.
_TRAINING_FOLDERS = ("train", "val")


def data_fingerprint(name: str, data_root: str | os.PathLike[str] | None) -> str:
    """A digest of the files a model trains on, for datasets that are the user's own files.

    Two folders with the same layout and class names but different images must not share a
    cached model, so the digest covers every file's path (relative to data_root), size and
    content, in the training folders (``train``, and ``val`` where present).

    Args:
        name: a registered dataset name.
        data_root: the dataset's folder.

    Returns:
        "sha256:<hex>" for a dataset with ``user_files`` (``imagefolder``); "" for the others,
        whose content their name fixes.
    """
    if not dataset_info(name).user_files:
        return ""
    root = _require_root(name, _as_root(data_root))
    digest = hashlib.sha256()
    for folder in _TRAINING_FOLDERS:
        files = sorted(p for p in (root / folder).rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(root).as_posix().encode("utf-8")
            content = path.read_bytes()
            digest.update(len(relative).to_bytes(8, "big") + relative)
            digest.update(len(content).to_bytes(8, "big") + hashlib.sha256(content).digest())
    return f"sha256:{digest.hexdigest()}"


def _as_root(data_root: str | os.PathLike[str] | None) -> Path | None:
    if data_root is None:
        return None
    if not isinstance(data_root, (str, os.PathLike)):
        raise TypeError(f"data_root must be a path or None; got {type(data_root).__name__}")
    return Path(data_root).expanduser()


def load_dataset(
    name: str,
    split: Split | str,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **options: Any,
) -> Dataset:
    """Load one split of a registered dataset.

    Args:
        name: a registered dataset name (see ``DATASETS.names()``).
        split: "train", "val" or "test".
        data_root: folder holding the files (torchvision datasets and ``imagefolder``); ignored by
            ``digits``.
        download: let torchvision download missing files into data_root (needs network).
        **options: dataset-specific options (``imagefolder``: ``image_size``).

    Returns:
        a Dataset yielding (x, y): x float32 (C, H, W) in [0, 1], y an int in [0, K).
    """
    loader = DATASETS.get(name)
    split = parse_option(Split, split, "split")
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool; got {download!r}")
    accepted = [
        parameter.name
        for parameter in inspect.signature(loader).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"dataset {name!r} got unknown option(s) {unknown}; it accepts {accepted or 'none'}"
        )
    return loader(split, _as_root(data_root), download, **options)


def load_tensors(
    name: str,
    split: Split | str,
    *,
    n_examples: int | None = None,
    seed: int = 0,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **options: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a fixed seeded subset of a split as two tensors, for evaluation.

    The subset is the first n_examples of a seeded permutation, returned in dataset order, so a
    smaller subset is contained in a larger one with the same seed.

    Args:
        name: a registered dataset name.
        split: "train", "val" or "test".
        n_examples: how many examples (not stratified); None for the whole split.
        seed: seed of the subset choice.
        data_root: see `load_dataset`.
        download: see `load_dataset`.
        **options: see `load_dataset`.

    Returns:
        x float32 (N, C, H, W) in [0, 1] and y int64 (N,).
    """
    if n_examples is not None and (
        not isinstance(n_examples, int) or isinstance(n_examples, bool) or n_examples < 1
    ):
        raise ValueError(f"n_examples must be a positive int or None; got {n_examples!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    split = parse_option(Split, split, "split")
    dataset = load_dataset(name, split, data_root=data_root, download=download, **options)
    total = len(dataset)
    if n_examples is None:
        index = np.arange(total)
    elif n_examples > total:
        raise NotEnoughExamples(name, split.value, n_examples, total)
    else:
        index = np.sort(np.random.RandomState(seed).permutation(total)[:n_examples])
    pairs = [dataset[int(i)] for i in index]
    if not pairs:
        raise ValueError(f"dataset {name!r} split {split.value!r} is empty")
    x = torch.stack([image for image, _ in pairs]).to(torch.float32)
    y = torch.tensor([int(label) for _, label in pairs], dtype=torch.int64)
    return x, y
