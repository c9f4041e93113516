"""Shift jobs: a model on corrupted test images and on out-of-distribution inputs.

A corruption job is (model, corruption, severity): the evaluated images corrupted by
`shifts.corrupt` batch by batch, each sample's noise drawn from its position in the
evaluated set, so the numbers do not depend on the batch size. An OOD job is (model,
source): as many out-of-distribution images as evaluated images, from a built-in source
(`shifts.ood_images`) or from another dataset's test split (loaded by `load_ood_sets`
before any work, so missing files stop the run at once). Both are evaluated under the
same dropout masks as the clean images (common random numbers), and compared with the
model's clean predictions by `shift_protocol`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from robustbench_local.bench.config import Config, config_error
from robustbench_local.bench.protocol import Predictions, predict
from robustbench_local.bench.shift_protocol import (
    corruption_metrics,
    ood_metrics,
    shift_sample_columns,
)
from robustbench_local.results.schema import OOD_LABEL
from robustbench_local.results.store import ShiftKey
from robustbench_local.shifts import OOD_SOURCES, corrupt, match_shape, ood_images
from robustbench_local.zoo.datasets import load_tensors

__all__ = [
    "ShiftOutcome",
    "evaluate_shift",
    "load_ood_sets",
    "ood_inputs",
    "plan_shifts",
    "shift_inputs",
]


@dataclass
class ShiftOutcome:
    """What a shift job hands back to the runner for storing."""

    key: ShiftKey
    metrics: dict[str, float]
    samples: dict[str, np.ndarray]
    seconds: float = 0.0
    model_digest: str = ""


def plan_shifts(config: Config) -> list[ShiftKey]:
    """Every shift job of the config, grouped by model: corruptions by severity, then OOD."""
    if config.shift is None:
        return []
    shift = config.shift
    return [
        key
        for model in config.models
        for key in (
            *(
                ShiftKey(model.name, "corruption", name, severity)
                for name in shift.corruptions
                for severity in shift.severities
            ),
            *(ShiftKey(model.name, "ood", name, 0) for name in shift.ood),
        )
    ]


def load_ood_sets(config: Config, x: Tensor) -> dict[str, Tensor]:
    """The OOD sets that are other datasets, loaded and converted to the run's image shape.

    Args:
        config: the validated config.
        x: (N, C, H, W) the evaluated images; each OOD set has at most N images.

    Returns:
        dataset name -> (M, C, H, W) images in [0, 1], M <= N.

    Raises:
        ConfigError: a dataset whose files are missing, naming [shift].ood.
    """
    if config.shift is None:
        return {}
    run, out = config.run, {}
    for name in config.shift.ood:
        if name in OOD_SOURCES:
            continue
        try:
            images, _ = load_tensors(name, "test", seed=run.seed, data_root=run.data_root)
        except (ValueError, OSError) as err:
            raise config_error(
                config.source,
                "[shift]",
                f"could not load dataset {name!r} as an out-of-distribution set: {err}",
                "ood",
            ) from err
        out[name] = match_shape(images[: len(x)], tuple(x.shape[1:]))
    return out


def shift_inputs(key: ShiftKey, x: Tensor, rows: slice, seed: int, ood: Tensor | None) -> Tensor:
    """The inputs of one batch of a shift job.

    Args:
        key: the job.
        x: (N, C, H, W) the evaluated images (clean).
        rows: the batch's rows.
        seed: the run seed (each sample's corruption also depends on its row index).
        ood: for an OOD job, its (M, C, H, W) images (`ood_inputs`); None for a corruption.

    Returns:
        (B, C, H, W) in [0, 1] on x's device; for OOD, rows beyond the set are cut.
    """
    if key.kind == "corruption":
        indices = torch.arange(rows.start, rows.stop)
        return corrupt(x[rows], key.name, key.severity, seed=seed, indices=indices)
    if ood is None:
        raise ValueError(f"ood: OOD job {key.name!r} needs its images (ood_inputs); got None")
    return ood[rows]


def ood_inputs(key: ShiftKey, x: Tensor, seed: int, ood_sets: dict[str, Tensor]) -> Tensor:
    """All (M, C, H, W) images of an OOD job: another dataset's (`load_ood_sets`), or N
    drawn once from a built-in source (image i from its own stream, so any batching of the
    set gives the same images)."""
    if key.name in ood_sets:
        return ood_sets[key.name]
    return ood_images(key.name, len(x), tuple(x.shape[1:]), seed=seed, reference=x)


def evaluate_shift(
    key: ShiftKey,
    *,
    model: torch.nn.Module,
    clean: Predictions,
    x: Tensor,
    y: Tensor,
    batches: list[slice],
    seed: int,
    ood_sets: dict[str, Tensor],
    device: torch.device,
    reseed: Callable[[int], None],
    progress: Callable[[], None] | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray], float]:
    """Run one shift job.

    Args:
        key: the job.
        model: the evaluation view of the model.
        clean: its predictions on the clean evaluated images (N,).
        x, y: the evaluated images (N, C, H, W) and labels (N,), on the CPU.
        batches: the run's batches over N.
        seed: the run seed.
        ood_sets: `load_ood_sets`' result.
        device: where the model runs.
        reseed: reseed(batch) fixes the model's dropout masks for that batch (the ones the
            clean images saw).
        progress: called once per batch.

    Returns:
        (metrics, per-sample columns, seconds).
    """
    started = time.perf_counter()
    ood = None if key.kind == "corruption" else ood_inputs(key, x, seed, ood_sets)
    n = len(y) if ood is None else len(ood)
    parts = []
    for b, rows in enumerate(batches):
        rows = slice(rows.start, min(rows.stop, n))
        if rows.start < rows.stop:
            inputs = shift_inputs(key, x, rows, seed, ood).to(device)
            # OOD inputs have no class; predict needs one, whose NLL and Brier are dropped.
            labels = (
                y[rows] if key.kind == "corruption" else torch.zeros(len(inputs), dtype=y.dtype)
            )
            reseed(b)
            parts.append(predict(model, inputs, labels)[0])
        if progress is not None:
            progress()
    preds = Predictions.concat(parts)
    if key.kind == "corruption":
        samples = shift_sample_columns(y.numpy(), preds)
        metrics = corruption_metrics(samples, clean, y.numpy())
    else:
        samples = shift_sample_columns(np.full(n, OOD_LABEL, dtype=np.int64), preds)
        metrics = ood_metrics(preds, clean)
    return metrics, samples, time.perf_counter() - started
