"""The checkpoint cache of the local model zoo: train a spec once, reuse it afterwards.

An entry is two files under ``<cache dir>/models/<dataset>/<zoo>/``, named
``<recipe>-seed<seed>-<key[:16]>``:

- ``.safetensors``: the weights, with the whole entry (key, spec, key material, training result)
  as JSON in the header metadata. This file is the entry: it is written to a unique temporary
  name and renamed into place, so it is either absent or complete, and processes racing to
  train the same key each rename a whole file (the last one wins).
- ``.json``: a readable copy of the same entry, written (atomically) after the weights and
  rewritten from them if it is missing.

A cached model is reused, never silently retrained: an entry that cannot be read, or whose key
or spec differs from the one asked for, raises `CacheError` naming the file and the fix (delete
it, or retrain with ``retrain=True`` / ``rbl train --retrain``). The cache directory is
``$RBL_CACHE_DIR``, else ``~/.cache/robustbench-local``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from robustbench_local.atomic import write_atomically
from robustbench_local.devices import resolve_device
from robustbench_local.zoo.checkpoints import (
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from robustbench_local.zoo.models import create_model
from robustbench_local.zoo.training.loop import TrainResult, train_model
from robustbench_local.zoo.training.spec import TrainSpec, with_data_fingerprint

__all__ = [
    "CACHE_ENV",
    "CacheError",
    "CachePaths",
    "cache_paths",
    "default_cache_dir",
    "load_cached",
    "load_or_train",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "RBL_CACHE_DIR"
ENTRY_FORMAT = 1  # layout of an entry's JSON; a reader refuses other versions
_KEY_FIELD = "rbl_key"  # safetensors header fields
_ENTRY_FIELD = "rbl_entry"


class CacheError(ValueError):
    """A cache entry that cannot be read or does not match the spec asked for."""


@dataclass(frozen=True)
class CachePaths:
    """Where one spec's entry lives.

    Args:
        weights: the ``.safetensors`` file (the entry itself).
        sidecar: the ``.json`` copy of its metadata.
    """

    weights: Path
    sidecar: Path


def default_cache_dir() -> Path:
    """``$RBL_CACHE_DIR`` when set and non-empty, else ``~/.cache/robustbench-local``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "robustbench-local"


def _cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is None:
        return default_cache_dir()
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a path or None; got {type(cache_dir).__name__}")
    return Path(cache_dir).expanduser()


def _safe(name: str) -> str:
    """name with anything but letters, digits, '.', '_' and '-' replaced (a safe path part)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def cache_paths(spec: TrainSpec, cache_dir: str | os.PathLike[str] | None = None) -> CachePaths:
    """The files of spec's cache entry (which may not exist yet).

    Args:
        spec: the training spec.
        cache_dir: the cache root; None for `default_cache_dir`.

    Returns:
        the `CachePaths`.
    """
    if not isinstance(spec, TrainSpec):
        raise TypeError(f"spec must be a TrainSpec; got {type(spec).__name__}")
    folder = _cache_dir(cache_dir) / "models" / _safe(spec.dataset) / _safe(spec.zoo)
    stem = f"{_safe(spec.recipe)}-seed{spec.seed}-{spec.key()[:16]}"
    return CachePaths(weights=folder / f"{stem}.safetensors", sidecar=folder / f"{stem}.json")


def _fix(paths: CachePaths) -> str:
    return (
        f"Delete {str(paths.weights)!r} and {str(paths.sidecar)!r} to retrain, or retrain "
        f"explicitly with retrain=True (rbl train --retrain)."
    )


def _entry(spec: TrainSpec, result: TrainResult) -> dict[str, Any]:
    return {
        "format": ENTRY_FORMAT,
        "key": spec.key(),
        "spec": spec.to_dict(),
        "key_material": spec.key_material(),
        "result": result.to_dict(),
        "entry_id": uuid.uuid4().hex,  # tells apart two writes of one key (racing trainers)
    }


def _differences(expected: Mapping[str, Any], found: object) -> str:
    if not isinstance(found, Mapping):
        return f"expected a spec mapping, found {found!r}"
    names = sorted(set(expected) | set(found))
    return ", ".join(
        f"{name}: expected {expected.get(name)!r}, found {found.get(name)!r}"
        for name in names
        if expected.get(name) != found.get(name)
    )


def _check_entry(entry: object, spec: TrainSpec, source: Path, paths: CachePaths) -> None:
    """entry must be a current-format entry for exactly spec."""
    if not isinstance(entry, Mapping) or entry.get("format") != ENTRY_FORMAT:
        found = entry.get("format") if isinstance(entry, Mapping) else type(entry).__name__
        raise CacheError(
            f"cache entry {str(source)!r} is not a format-{ENTRY_FORMAT} entry (found "
            f"{found!r}). {_fix(paths)}"
        )
    if entry.get("key") != spec.key() or entry.get("spec") != spec.to_dict():
        raise CacheError(
            f"cache entry {str(source)!r} was written for another spec than the one asked for "
            f"({_differences(spec.to_dict(), entry.get('spec'))}; key "
            f"{str(entry.get('key'))[:16]!r} vs {spec.key()[:16]!r}). {_fix(paths)}"
        )


def _read_header_entry(spec: TrainSpec, paths: CachePaths) -> dict[str, Any]:
    """The entry stored in the weights file's header, checked against spec."""
    try:
        header = read_checkpoint_metadata(paths.weights)
        entry = json.loads(header[_ENTRY_FIELD])
        key = header[_KEY_FIELD]
    except (ValueError, OSError, KeyError) as err:
        raise CacheError(
            f"cache entry {str(paths.weights)!r} is corrupt or not a robustbench-local entry "
            f"({type(err).__name__}: {err}). {_fix(paths)}"
        ) from err
    if key != spec.key():
        raise CacheError(
            f"cache entry {str(paths.weights)!r} holds key {key[:16]!r}, not {spec.key()[:16]!r} "
            f"as its name says. {_fix(paths)}"
        )
    _check_entry(entry, spec, paths.weights, paths)
    return entry


def _sidecar_bytes(entry: Mapping[str, Any]) -> bytes:
    return (json.dumps(entry, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _sync_sidecar(entry: dict[str, Any], spec: TrainSpec, paths: CachePaths) -> None:
    """Check the sidecar against the weights' entry; write it if missing or left by a race."""
    if paths.sidecar.is_file():
        try:
            found = json.loads(paths.sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CacheError(
                f"cache sidecar {str(paths.sidecar)!r} is corrupt ({type(err).__name__}: "
                f"{err}). {_fix(paths)}"
            ) from err
        _check_entry(found, spec, paths.sidecar, paths)
        if found.get("entry_id") == entry["entry_id"]:
            return
        # Same spec, another write: two processes trained this key and renamed in turn.
        logger.warning("rewriting %s from its weights file (a concurrent write)", paths.sidecar)
    write_atomically(paths.sidecar, _sidecar_bytes(entry))


def load_cached(
    spec: TrainSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    data_root: str | os.PathLike[str] | None = None,
) -> tuple[nn.Sequential, TrainResult] | None:
    """Load spec's model from the cache, if it has been trained.

    Args:
        spec: the training spec.
        cache_dir: the cache root; None for `default_cache_dir`.
        device: where to put the model.
        data_root: the dataset's folder; for a dataset of your own files (``imagefolder``)
            its content is part of the key (`with_data_fingerprint`).

    Returns:
        (model in eval mode on device, its `TrainResult`), or None when there is no entry.

    Raises:
        CacheError: the entry is corrupt or does not match spec.
    """
    spec = with_data_fingerprint(spec, data_root)
    paths = cache_paths(spec, cache_dir)
    where = resolve_device(device)
    if not paths.weights.is_file():
        return None
    entry = _read_header_entry(spec, paths)
    try:
        result = TrainResult.from_dict(entry["result"])
        # fork_rng: building the model draws initial weights from the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            model = create_model(
                spec.zoo, num_classes=spec.num_classes, mean=spec.mean, std=spec.std
            )
        load_checkpoint(model, paths.weights)
    except (ValueError, TypeError, KeyError, OSError) as err:
        raise CacheError(
            f"cache entry {str(paths.weights)!r} could not be loaded ({type(err).__name__}: "
            f"{err}). {_fix(paths)}"
        ) from err
    _sync_sidecar(entry, spec, paths)
    logger.info("loaded cached model %s", paths.weights)
    return model.to(where).eval(), result


def _store(spec: TrainSpec, model: nn.Module, result: TrainResult, paths: CachePaths) -> None:
    """Write the entry: the weights (the commit point), then the sidecar; each atomically."""
    entry = _entry(spec, result)
    metadata = {_KEY_FIELD: entry["key"], _ENTRY_FIELD: json.dumps(entry, sort_keys=True)}
    save_checkpoint(model, paths.weights, metadata=metadata)  # atomic and fsynced
    write_atomically(paths.sidecar, _sidecar_bytes(entry))
    logger.info("cached %s", paths.weights)


def load_or_train(
    spec: TrainSpec,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    retrain: bool = False,
    amp: bool = False,
    progress: bool = False,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[nn.Sequential, TrainResult, bool]:
    """The cached model for spec, training and caching it first if there is none.

    Args:
        spec: the training spec.
        cache_dir: the cache root; None for `default_cache_dir` (``$RBL_CACHE_DIR``).
        device: where to train (on a miss) and where to put the model.
        retrain: train even if an entry exists (corrupt or not) and overwrite it.
        amp: bf16 autocast while training (CUDA only).
        progress: a tqdm bar while training (only on a terminal).
        data_root: the dataset's folder (not needed for "digits"); for a dataset of your
            own files (``imagefolder``) its content is part of the key.
        download: let torchvision fetch missing files into data_root before training.

    Returns:
        (model in eval mode on device, mapping (B, C, H, W) in [0, 1] to logits (B, K);
        its `TrainResult`; cached: True when loaded from the cache, False when trained now).

    Raises:
        CacheError: an existing entry is corrupt or does not match spec (and retrain is False).
    """
    if not isinstance(retrain, bool):
        raise TypeError(f"retrain must be a bool; got {retrain!r}")
    spec = with_data_fingerprint(spec, data_root)
    paths = cache_paths(spec, cache_dir)
    if not retrain:
        found = load_cached(spec, cache_dir=cache_dir, device=device)
        if found is not None:
            return found[0], found[1], True
    model, result = train_model(
        spec, device=device, amp=amp, progress=progress, data_root=data_root, download=download
    )
    _store(spec, model, result, paths)
    return model, result, False
