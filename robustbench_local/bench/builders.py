"""From a config's [[models]] entry to a ready model: trained (or cached), wrapped, placed.

A zoo entry is trained with its recipe (or loaded from the cache); ``ensemble = n``
trains n members with consecutive seeds and wraps them in a DeepEnsemble;
``mc_samples = T`` wraps the model in MC dropout (with a second, cheaper view of the same
weights for attacks: ``attack_samples`` masks per gradient). A user's model comes from its factory
and checkpoint. With AMP the result runs under bfloat16 autocast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from robustbench_local.bench.config import ModelSpec, RunSettings
from robustbench_local.devices import Autocast
from robustbench_local.zoo.checkpoints import load_checkpoint
from robustbench_local.zoo.datasets import data_fingerprint
from robustbench_local.zoo.factory import build_user_model
from robustbench_local.zoo.training import TrainSpec, default_spec, load_or_train
from uncertainty import DeepEnsemble, MCDropout

__all__ = ["BuiltModel", "build_model", "member_seeds", "prepare_model", "train_specs"]


@dataclass(frozen=True)
class BuiltModel:
    """The two views a job uses of one model (the same object for a deterministic model).

    Attributes:
        evaluate: what predictions, confidences and uncertainties are measured on.
        attack: what attacks differentiate; for MC dropout the same weights with fewer
            dropout masks per forward pass (expectation over transformation).
    """

    evaluate: nn.Module
    attack: nn.Module


def member_seeds(spec: ModelSpec, run: RunSettings) -> list[int]:
    """The training seeds of a model's members (one for a single model)."""
    base = run.seed if spec.seed is None else spec.seed
    return [base + i for i in range(spec.ensemble)]


def train_specs(
    spec: ModelSpec, run: RunSettings, fingerprint: str | None = None
) -> list[TrainSpec]:
    """The training specs of a zoo entry's members, keyed to the run's data files.

    fingerprint: `datasets.data_fingerprint` of the run's data, when the caller has it
    (the runner reads the user's files once per run); None reads them here.
    """
    if spec.zoo is None:
        raise ValueError(f"model {spec.name!r} is a user model (factory); it is not trained")
    specs = [
        # data_root: an image folder's class folders give num_classes.
        default_spec(
            spec.zoo,
            run.dataset,
            spec.recipe,
            seed=seed,
            data_root=run.data_root,
            **dict(spec.train),
        )
        for seed in member_seeds(spec, run)
    ]
    if fingerprint is None:  # once for all members, not once per member
        fingerprint = data_fingerprint(run.dataset, run.data_root)
    return [dataclasses.replace(s, data_fingerprint=fingerprint) for s in specs]


def prepare_model(
    spec: ModelSpec,
    run: RunSettings,
    *,
    device: torch.device,
    cache_dir: Path | None,
    retrain: bool,
    progress: bool,
    on_trained: Callable[[str, bool], None] | None = None,
    fingerprint: str | None = None,
) -> None:
    """Make sure every checkpoint the model needs is in the cache (training what is missing).

    fingerprint: the run's `datasets.data_fingerprint`, if already computed.
    """
    if spec.zoo is None:
        return
    for train_spec in train_specs(spec, run, fingerprint):
        _, _, cached = load_or_train(
            train_spec,
            cache_dir=cache_dir,
            device=device,
            retrain=retrain,
            progress=progress,
            data_root=run.data_root,
            download=run.download,
        )
        if on_trained is not None:
            on_trained(spec.name, cached)
        retrain = False  # --retrain retrains each checkpoint once, not again for reuse


def build_model(
    spec: ModelSpec,
    run: RunSettings,
    *,
    device: torch.device,
    cache_dir: Path | None,
    amp: bool = False,
    progress: bool = False,
    fingerprint: str | None = None,
    prebuilt: nn.Module | None = None,
) -> BuiltModel:
    """The model a job evaluates and attacks, in eval mode on ``device``.

    Args:
        spec: the [[models]] entry.
        run: the [run] settings (dataset, seed).
        device: where to place it.
        cache_dir: the checkpoint cache (None: RBL_CACHE_DIR or the default).
        amp: run under bfloat16 autocast.
        progress: show training progress bars.
        fingerprint: the run's `datasets.data_fingerprint`, if already computed.
        prebuilt: a user model already built from its factory and checkpoint (by
            `runner.prepare_run`, which checked its outputs), used instead of building it
            again; None builds it here.

    Returns:
        the evaluation and attack views, each an nn.Module mapping (B, ...) to logits
        (B, K); a DeepEnsemble or MCDropout where the entry asks for one (both also give
        ``sample_probs``).
    """
    if spec.factory is not None and prebuilt is not None:
        model = prebuilt
    elif spec.factory is not None:
        model = build_user_model(spec.factory, dict(spec.factory_kwargs))
        load_checkpoint(model, spec.checkpoint)
    else:
        members = [
            load_or_train(
                s, cache_dir=cache_dir, device=device, progress=progress, data_root=run.data_root
            )[0]
            for s in train_specs(spec, run, fingerprint)
        ]
        model = members[0] if len(members) == 1 else DeepEnsemble(members)
    model = model.to(device).eval()
    if spec.mc_samples is None:
        view = Autocast(model, device.type) if amp else model
        return BuiltModel(evaluate=view, attack=view)
    views = [MCDropout(model, samples=n) for n in (spec.mc_samples, spec.attack_mc_samples)]
    if amp:
        views = [Autocast(v, device.type) for v in views]
    return BuiltModel(evaluate=views[0].eval(), attack=views[1].eval())
