"""Training a zoo model from a `TrainSpec`: one seeded loop shared by every recipe."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from robustbench_local.devices import check_amp, resolve_device
from robustbench_local.zoo.datasets import load_tensors
from robustbench_local.zoo.models import create_model
from robustbench_local.zoo.training.recipes import RECIPES
from robustbench_local.zoo.training.spec import TrainSpec

__all__ = ["TrainResult", "accuracy", "train_model"]

logger = logging.getLogger(__name__)

_EVAL_BATCH = 1024  # evaluation needs no gradients, so larger batches are cheap


@dataclass(frozen=True)
class TrainResult:
    """What a training run measured and where it ran.

    Args:
        key: the spec's cache key (`TrainSpec.key`).
        train_accuracy: clean accuracy on the "train" split after training, eval mode, in [0, 1].
        val_accuracy: clean accuracy on the "val" split, eval mode, in [0, 1].
        final_loss: mean training loss (on the recipe's inputs) over the last epoch.
        wall_time_s: seconds from loading the data to the evaluated model.
        device: where it trained ("cpu", "cuda:0").
        amp: whether bf16 autocast was on.
        torch_version: the full torch version.
        num_threads: torch's intra-op CPU threads during training.
        created: ISO 8601 UTC time training finished.
    """

    key: str
    train_accuracy: float
    val_accuracy: float
    final_loss: float
    wall_time_s: float
    device: str
    amp: bool
    torch_version: str
    num_threads: int
    created: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainResult:
        """Rebuild from `to_dict` output; missing or unknown fields raise ValueError."""
        names = {field.name for field in fields(cls)}
        if not isinstance(values, Mapping) or set(values) != names:
            got = sorted(values) if isinstance(values, Mapping) else repr(values)
            raise ValueError(f"values must hold exactly the fields {sorted(names)}; got {got}")
        return cls(**values)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _stream_seed(seed: int, stream: str) -> int:
    """An independent seed per random stream (init, data, attack), so changing one use of
    randomness (say, an attack's random starts) does not shift the others."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # manual_seed takes < 2**63


def _lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the peak lr at a fraction of training done, progress in [0, 1]."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "triangle":
        peak = 0.4
        return progress / peak if progress < peak else (1.0 - progress) / (1.0 - peak)
    return 1.0


def _optimizer(spec: TrainSpec, model: nn.Module) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=spec.lr,
            momentum=spec.momentum,
            weight_decay=spec.weight_decay,
        )
    return torch.optim.Adam(
        model.parameters(),
        lr=spec.lr,
        betas=(spec.momentum, 0.999),
        weight_decay=spec.weight_decay,
    )


def _augment(x: Tensor, mode: str, generator: torch.Generator) -> Tensor:
    """Random crop after zero padding H/8 (4 px at 32x32), and a horizontal flip for
    "crop_flip"; x (B, C, H, W) -> (B, C, H, W)."""
    if mode == "none":
        return x
    batch, channels, height, width = x.shape
    pad = max(1, height // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    shift = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(x.device)
    rows = shift[0, :, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = shift[1, :, None] + torch.arange(width, device=x.device)  # (B, W)
    out = padded[
        torch.arange(batch, device=x.device)[:, None, None, None],
        torch.arange(channels, device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if mode == "crop_flip":
        flip = (torch.rand(batch, generator=generator) < 0.5).to(x.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A seeded shuffle of range(n) cut into batches; a final batch of one is dropped,
    because BatchNorm cannot normalise a single example in train mode."""
    chunks = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks.pop()
    return chunks


def _batch_count(n: int, batch_size: int) -> int:
    """len(_batches(n, batch_size, ...)), without drawing a permutation."""
    count = -(-n // batch_size)
    return count - 1 if count > 1 and n % batch_size == 1 else count


@torch.no_grad()
def accuracy(
    model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = _EVAL_BATCH, amp: bool = False
) -> float:
    """Top-1 accuracy of model on (x, y), in eval mode, batched.

    Args:
        model: returns logits (B, K); its training flags are restored afterwards.
        x: inputs (N, C, H, W) on the model's device.
        y: labels (N,) on the model's device.
        batch_size: examples per forward pass.
        amp: run under bf16 autocast (CUDA only).

    Returns:
        the fraction of correct predictions, in [0, 1].
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        correct = 0
        with _autocast(x.device, amp):
            for start in range(0, len(y), batch_size):
                logits = model(x[start : start + batch_size])
                correct += int((logits.argmax(dim=1) == y[start : start + batch_size]).sum())
        return correct / len(y)
    finally:
        for module, training in flags:
            module.training = training


def _label(spec: TrainSpec) -> str:
    return f"{spec.zoo}/{spec.dataset}/{spec.recipe}/seed{spec.seed}"


def _progress_bar(spec: TrainSpec, total: int, progress: bool) -> tqdm:
    # disable=None lets tqdm switch itself off when stderr is not a terminal.
    return tqdm(
        total=total,
        desc=f"train {_label(spec)}",
        unit="batch",
        disable=None if progress else True,
        leave=False,
    )


@contextlib.contextmanager
def _private_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global CPU (and CUDA) RNG for weight init and dropout, and restore the
    caller's RNG state afterwards."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def _split(
    spec: TrainSpec,
    split: str,
    device: torch.device,
    data_root: str | os.PathLike[str] | None,
    download: bool,
) -> tuple[Tensor, Tensor]:
    """A whole split as x (N, C, H, W), y (N,) on device: the zoo's datasets fit in memory."""
    x, y = load_tensors(spec.dataset, split, data_root=data_root, download=download)
    return x.to(device), y.to(device)


def train_model(
    spec: TrainSpec,
    *,
    device: str | torch.device = "cpu",
    amp: bool = False,
    progress: bool = False,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[nn.Sequential, TrainResult]:
    """Train spec's zoo model from scratch with its recipe, deterministically.

    Weights, data order, augmentation, dropout masks and attack starts all derive from
    spec.seed, so the same spec on the same device (and thread count) gives the same weights
    on CPU. The caller's global RNG state is left untouched.

    Args:
        spec: what to train.
        device: "cpu", "cuda", "cuda:N" or a torch.device.
        amp: bf16 autocast for the forward passes and attacks (CUDA only; never on CPU).
        progress: show a tqdm bar over the batches (only when stderr is a terminal).
        data_root: the dataset's folder (not needed for "digits").
        download: let torchvision fetch missing files into data_root.

    Returns:
        the model (nn.Sequential mapping (B, C, H, W) in [0, 1] to logits (B, K)) in eval mode
        on device, and its `TrainResult`.
    """
    if not isinstance(spec, TrainSpec):
        raise TypeError(f"spec must be a TrainSpec; got {type(spec).__name__}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool; got {progress!r}")
    where = resolve_device(device)
    amp = check_amp(amp, where)
    recipe = RECIPES.get(spec.recipe)
    started = time.perf_counter()
    x_train, y_train = _split(spec, "train", where, data_root, download)
    x_val, y_val = _split(spec, "val", where, data_root, download)
    # CPU generators on every device: the same draws wherever the model trains.
    data_rng = torch.Generator().manual_seed(_stream_seed(spec.seed, "data"))
    attack_rng = torch.Generator().manual_seed(_stream_seed(spec.seed, "attack"))
    total_steps = spec.epochs * _batch_count(len(y_train), spec.batch_size)
    logger.info("training %s on %s (key %s)", _label(spec), where, spec.key()[:16])

    with _private_rng(where, _stream_seed(spec.seed, "init")):
        model = create_model(spec.zoo, num_classes=spec.num_classes, mean=spec.mean, std=spec.std)
        model.to(where).train()
        optimiser = _optimizer(spec, model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: _lr_factor(spec.schedule, step / total_steps)
        )
        final_loss = math.nan
        with _progress_bar(spec, total_steps, progress) as bar:
            for epoch in range(spec.epochs):
                loss_sum = torch.zeros((), device=where)
                seen = 0
                for index in _batches(len(y_train), spec.batch_size, data_rng):
                    index = index.to(where)
                    x = _augment(x_train[index], spec.augment, data_rng)
                    y = y_train[index]
                    with _autocast(where, amp):
                        inputs = recipe.make_inputs(
                            model,
                            x,
                            y,
                            eps=spec.eps,
                            steps=spec.attack_steps,
                            step_size=spec.step_size,
                            generator=attack_rng,
                        )
                        loss = F.cross_entropy(model(inputs).float(), y)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    scheduler.step()
                    loss_sum += loss.detach() * len(y)
                    seen += len(y)
                    bar.update()
                final_loss = float(loss_sum) / seen
                if not math.isfinite(final_loss):
                    # Never cache a diverged model as if it were trained.
                    raise FloatingPointError(
                        f"training {_label(spec)} diverged: mean loss {final_loss} in epoch "
                        f"{epoch + 1}; try a smaller lr (got lr={spec.lr})"
                    )
                bar.set_postfix(epoch=epoch + 1, loss=f"{final_loss:.3f}")
        model.eval()
        result = TrainResult(
            key=spec.key(),
            train_accuracy=accuracy(model, x_train, y_train, amp=amp),
            val_accuracy=accuracy(model, x_val, y_val, amp=amp),
            final_loss=final_loss,
            wall_time_s=time.perf_counter() - started,
            device=str(where),
            amp=amp,
            torch_version=torch.__version__,
            num_threads=torch.get_num_threads(),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    for parameter in model.parameters():
        parameter.grad = None
    logger.info(
        "trained %s in %.1fs: train acc %.3f, val acc %.3f",
        _label(spec),
        result.wall_time_s,
        result.train_accuracy,
        result.val_accuracy,
    )
    return model, result
