"""The model zoo: architectures registered by name, each with its normalisation built in.

Every zoo model is ``nn.Sequential(normalize=Normalize(mean, std), net=<architecture>)``: it takes
inputs in pixel space [0, 1] of shape (B, C, H, W) and returns logits (B, K). Keeping the
normalisation inside the model means an attack's epsilon is always measured in pixel units.

Registered architectures:

- ``digits-cnn`` / ``digits-cnn-dropout``: a small CNN with BatchNorm for (1, 8, 8) digits
  (about 23k parameters); the dropout variant adds two ``nn.Dropout(0.25)`` layers, for MC
  dropout (whose BatchNorm must stay in eval mode).
- ``mnist-cnn`` / ``mnist-cnn-dropout``: a two-conv CNN for (1, 28, 28) MNIST and
  Fashion-MNIST (about 420k parameters); the dropout variant adds ``nn.Dropout(0.25)`` and
  ``nn.Dropout(0.5)``.
- ``cifar-resnet18``: ResNet-18 for (3, 32, 32) CIFAR-10 and SVHN, with a 3x3 stride-1 stem and no
  max-pool (the usual CIFAR variant; about 11.2M parameters).

The mean/std defaults are those of the first dataset an architecture is for; pass the other
dataset's values (``datasets.dataset_info(name).mean``) when using it elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from robustbench_local.registry import Registry
from robustbench_local.zoo.datasets import dataset_info

__all__ = [
    "MODELS",
    "CifarResNet18",
    "ModelInfo",
    "Normalize",
    "count_parameters",
    "create_model",
    "model_info",
]


class Normalize(nn.Module):
    """Per-channel standardisation ``(x - mean) / std``, the first layer of every zoo model.

    mean and std are buffers, so they move with ``.to(device)`` and are saved in the state dict.

    Args:
        mean: per-channel means (C,).
        std: per-channel standard deviations (C,), all > 0.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = _channel_vector("mean", mean)
        std_t = _channel_vector("std", std)
        if len(mean_t) != len(std_t):
            raise ValueError(
                f"mean and std must have one value per channel each; got {len(mean_t)} means "
                f"and {len(std_t)} stds"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be > 0 in every channel; got {tuple(std_t.tolist())}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise x (B, C, H, W) -> (B, C, H, W)."""
        channels = self.mean.shape[1]
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(
                f"x must have shape (B, {channels}, H, W) to match Normalize's {channels} "
                f"channel(s); got {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        mean = [round(v, 6) for v in self.mean.flatten().tolist()]
        std = [round(v, 6) for v in self.std.flatten().tolist()]
        return f"mean={mean}, std={std}"


def _channel_vector(argument: str, values: Sequence[float]) -> torch.Tensor:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, torch.Tensor)):
        raise TypeError(f"{argument} must be a sequence of floats; got {values!r}")
    vector = torch.as_tensor([float(v) for v in values], dtype=torch.float32)
    if vector.numel() == 0 or not bool(torch.isfinite(vector).all()):
        raise ValueError(
            f"{argument} must be a non-empty sequence of finite floats; got {values!r}"
        )
    return vector


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a registered architecture.

    Args:
        name: the registered name.
        input_shape: (C, H, W) the model expects.
        num_classes: default number of classes K.
        mean: default Normalize mean (C,).
        std: default Normalize std (C,).
        datasets: the registered datasets it is meant for, the first giving mean/std.
        dropout: whether it has dropout layers with p > 0 (usable for MC dropout).
        description: one line for listings.
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    datasets: tuple[str, ...]
    dropout: bool
    description: str


ModelBuilder = Callable[[int], nn.Module]
"""``builder(num_classes) -> nn.Module`` mapping normalised (B, C, H, W) to logits (B, K)."""

MODELS: Registry[ModelBuilder] = Registry("model")


def _model(
    name: str, *, datasets: tuple[str, ...], dropout: bool, description: str
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a builder; shape, classes and mean/std come from its first dataset."""
    first = dataset_info(datasets[0])
    if first.num_classes is None:
        raise ValueError(f"model {name!r}: dataset {datasets[0]!r} has no fixed num_classes")
    return MODELS.register(
        name,
        input_shape=first.input_shape,
        num_classes=first.num_classes,
        mean=first.mean,
        std=first.std,
        datasets=datasets,
        dropout=dropout,
        description=description,
    )


def _digits_cnn(num_classes: int, p_dropout: float) -> nn.Sequential:
    """(B, 1, 8, 8) -> (B, K): three 3x3 convs with BatchNorm, two max-pools, two linears."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        nn.Conv2d(32, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 4x4 -> 2x2
        nn.Flatten(),
    ]
    if p_dropout > 0:
        layers.append(nn.Dropout(p_dropout))
    layers += [nn.Linear(32 * 2 * 2, 64), nn.ReLU()]
    if p_dropout > 0:
        layers.append(nn.Dropout(p_dropout))
    layers.append(nn.Linear(64, num_classes))
    return nn.Sequential(*layers)


@_model(
    "digits-cnn",
    datasets=("digits",),
    dropout=False,
    description="small CNN with BatchNorm for 8x8 digits (~23k parameters)",
)
def _build_digits_cnn(num_classes: int) -> nn.Module:
    return _digits_cnn(num_classes, p_dropout=0.0)


@_model(
    "digits-cnn-dropout",
    datasets=("digits",),
    dropout=True,
    description="digits-cnn with Dropout(0.25) before each linear layer, for MC dropout",
)
def _build_digits_cnn_dropout(num_classes: int) -> nn.Module:
    return _digits_cnn(num_classes, p_dropout=0.25)


def _mnist_cnn(num_classes: int, dropout: bool) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, K): two conv + max-pool blocks, then two linears."""
    layers: list[nn.Module] = [
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 28 -> 14
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 14 -> 7
        nn.Flatten(),
    ]
    if dropout:
        layers.append(nn.Dropout(0.25))
    layers += [nn.Linear(64 * 7 * 7, 128), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(128, num_classes))
    return nn.Sequential(*layers)


@_model(
    "mnist-cnn",
    datasets=("mnist", "fashion-mnist"),
    dropout=False,
    description="two-conv CNN for 28x28 MNIST / Fashion-MNIST (~420k parameters)",
)
def _build_mnist_cnn(num_classes: int) -> nn.Module:
    return _mnist_cnn(num_classes, dropout=False)


@_model(
    "mnist-cnn-dropout",
    datasets=("mnist", "fashion-mnist"),
    dropout=True,
    description="mnist-cnn with Dropout(0.25) and Dropout(0.5), for MC dropout",
)
def _build_mnist_cnn_dropout(num_classes: int) -> nn.Module:
    return _mnist_cnn(num_classes, dropout=True)


class _BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (a 1x1 projection when the shape changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs: 3x3 stride-1 stem, no max-pool, four stages of two blocks.

    Args:
        num_classes: number of classes K.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages: list[nn.Module] = []
        in_planes = 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks = [_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1)]
            stages.append(nn.Sequential(*blocks))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) of normalised x (B, 3, H, W)."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        return self.linear(out)


@_model(
    "cifar-resnet18",
    datasets=("cifar10", "svhn"),
    dropout=False,
    description="ResNet-18 for 32x32 CIFAR-10 / SVHN: 3x3 stem, no max-pool (~11.2M parameters)",
)
def _build_cifar_resnet18(num_classes: int) -> nn.Module:
    return CifarResNet18(num_classes)


def model_info(name: str) -> ModelInfo:
    """The facts registered for an architecture.

    Args:
        name: a registered model name (see ``MODELS.names()``).

    Returns:
        its `ModelInfo` (input shape (C, H, W), default num_classes and mean/std (C,), datasets).
    """
    return ModelInfo(name=name, **MODELS.metadata(name))


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> nn.Sequential:
    """Build a freshly initialised zoo model; call ``torch.manual_seed`` first to fix its weights.

    Args:
        name: a registered model name (see ``MODELS.names()``).
        num_classes: number of classes K (>= 2); None for the registered default.
        mean: Normalize mean (C,); None for the registered default.
        std: Normalize std (C,); None for the registered default.

    Returns:
        ``nn.Sequential(normalize=Normalize, net=...)`` mapping x (B, C, H, W) in [0, 1] to
        logits (B, K), in train mode.
    """
    builder = MODELS.get(name)
    info = model_info(name)
    if num_classes is None:
        num_classes = info.num_classes
    elif not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    channels = info.input_shape[0]
    normalize = Normalize(info.mean if mean is None else mean, info.std if std is None else std)
    if normalize.mean.shape[1] != channels:
        raise ValueError(
            f"model {name!r} takes {channels}-channel inputs, so mean and std need {channels} "
            f"value(s) each; got mean={mean!r}, std={std!r}"
        )
    return nn.Sequential(OrderedDict(normalize=normalize, net=builder(num_classes)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
