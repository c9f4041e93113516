"""Saving and loading model weights without ever running code from a file.

Checkpoints are written as ``.safetensors`` (tensors and string metadata only). ``.pt`` / ``.pth``
files are read only through ``torch.load(path, map_location="cpu", weights_only=True)``, whose
unpickler accepts tensors and plain containers and refuses anything that would import or call
code; such a file is rejected with `UnsafeCheckpointError` before any of its code runs.

A ``.pt`` file may hold a bare state dict or ``{"state_dict": state_dict, ...}``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from robustbench_local.atomic import write_atomically

__all__ = [
    "CheckpointMismatchError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "load_state_dict",
    "read_checkpoint_metadata",
    "save_checkpoint",
]

SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pt", ".pth")
_LISTED = 10  # how many offending keys an error message names before summarising


class UnsafeCheckpointError(ValueError):
    """A checkpoint that would run code when unpickled (or is not a plain tensor pickle)."""


class CheckpointMismatchError(ValueError):
    """A state dict whose keys or tensor shapes do not match the model."""


def _as_path(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    return Path(path)


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write model's state dict (parameters and buffers) to a ``.safetensors`` file.

    The file is written next to path and then renamed over it, so an interrupted save never
    leaves a truncated checkpoint at path.

    Args:
        model: the module to save.
        path: destination ending in ``.safetensors``; missing parent folders are created.
        metadata: string key/value pairs stored in the header (e.g. ``{"zoo_name": ...}``).

    Returns:
        the path written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
    destination = _as_path(path)
    if destination.suffix != SAFETENSORS_SUFFIX:
        raise ValueError(
            f"path must end in {SAFETENSORS_SUFFIX!r} (checkpoints are saved as safetensors); "
            f"got {str(destination)!r}"
        )
    header = {"format": "pt"}
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
        ):
            raise TypeError(f"metadata must map str to str; got {metadata!r}")
        header.update(metadata)
    # Cloned so that tied weights (one storage under two names), which safetensors refuses,
    # are saved as two tensors; load_state_dict then fills the tied parameter twice.
    tensors = {
        key: value.detach().to("cpu").clone().contiguous()
        for key, value in model.state_dict().items()
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Serialised in memory and written by the project's one atomic writer, so that a failed
    # write (a full disk) is an OSError with its errno and leaves no temporary file behind.
    write_atomically(destination, safetensors_bytes(tensors, metadata=header))
    return destination


def _existing(path: str | os.PathLike[str]) -> Path:
    source = _as_path(path)
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {str(source)!r} is not a file")
    if source.suffix not in (SAFETENSORS_SUFFIX, *TORCH_SUFFIXES):
        raise ValueError(
            f"checkpoint {str(source)!r} has unknown extension {source.suffix!r}; expected "
            f"{SAFETENSORS_SUFFIX!r}, {TORCH_SUFFIXES[0]!r} or {TORCH_SUFFIXES[1]!r}"
        )
    return source


def _refusal_reason(err: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only error that names the refused global."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "global" in line.lower():
            return line
    return lines[0] if lines else type(err).__name__


def _read_torch_file(source: Path) -> object:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"refused to load checkpoint {str(source)!r}: it is not a plain tensor pickle, so "
            f"loading it could run code ({_refusal_reason(err)}). Only weights are accepted: "
            f"re-save the state dict with save_checkpoint (.safetensors) or "
            f"torch.save(model.state_dict(), path)."
        ) from err
    except Exception as err:  # truncated zip, random bytes, empty file: torch raises many types
        raise ValueError(
            f"could not read checkpoint {str(source)!r} with torch.load(weights_only=True): "
            f"{type(err).__name__}: {err}"
        ) from err


def _state_dict_of(payload: object, source: Path) -> dict[str, torch.Tensor]:
    """The state dict in a .pt payload: the payload itself or its "state_dict" entry."""
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping) or not payload:
        described = (
            f"a dict with keys {sorted(map(str, payload))[:_LISTED]}"
            if isinstance(payload, Mapping)
            else type(payload).__name__
        )
        raise ValueError(
            f"checkpoint {str(source)!r} holds {described}; expected a non-empty state dict "
            f"(str -> Tensor) or a dict with a 'state_dict' entry"
        )
    not_tensors = [str(key) for key, val in payload.items() if not isinstance(val, torch.Tensor)]
    if not_tensors or not all(isinstance(key, str) for key in payload):
        raise ValueError(
            f"checkpoint {str(source)!r} is not a state dict: entries "
            f"{not_tensors[:_LISTED] or sorted(map(str, payload))[:_LISTED]} are not str -> Tensor"
        )
    return dict(payload)


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors``, ``.pt`` or ``.pth`` file onto the CPU.

    Args:
        path: the checkpoint file.

    Returns:
        the state dict, name -> tensor.

    Raises:
        FileNotFoundError: path is not a file.
        UnsafeCheckpointError: a .pt/.pth file that holds anything but tensors and containers.
        ValueError: unknown extension, unreadable file, or no state dict inside.
    """
    source = _existing(path)
    if source.suffix == SAFETENSORS_SUFFIX:
        try:
            return load_file(str(source), device="cpu")
        except SafetensorError as err:
            raise ValueError(
                f"could not read safetensors checkpoint {str(source)!r}: {err}"
            ) from err
    return _state_dict_of(_read_torch_file(source), source)


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata in a ``.safetensors`` header ({} for .pt/.pth files).

    Args:
        path: the checkpoint file.

    Returns:
        the header's metadata, str -> str.
    """
    source = _existing(path)
    if source.suffix != SAFETENSORS_SUFFIX:
        return {}
    try:
        with safe_open(str(source), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except SafetensorError as err:
        raise ValueError(f"could not read safetensors checkpoint {str(source)!r}: {err}") from err


def _listing(items: list[str], *, quote: bool = True) -> str:
    shown = ", ".join(repr(item) if quote else item for item in items[:_LISTED])
    more = len(items) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """Load a checkpoint's weights into model, in place, requiring an exact match.

    Args:
        model: the module to fill; its device is kept.
        path: a ``.safetensors``, ``.pt`` or ``.pth`` file (see `load_state_dict`).

    Returns:
        model, for chaining.

    Raises:
        CheckpointMismatchError: missing or unexpected keys, or tensors of the wrong shape.
        (and the errors of `load_state_dict`)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
    state = load_state_dict(path)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(f"missing keys {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_listing(unexpected)}")
        if wrong_shape:
            problems.append(f"shape mismatches {_listing(wrong_shape, quote=False)}")
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r} does not match model {type(model).__name__}: "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)
    return model
