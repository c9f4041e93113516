"""What a run's stored numbers were computed from, so that a resumed run cannot mix sources.

The config digest says what was asked for; it cannot see what was actually used: the
images under data_root (which a user may edit between two sessions), the weights of each
model (a cleared cache retrained with another thread count, or on another device, gives
other weights), and the device kind and precision the numbers came from. A run pins each of
these in its store the first time it sees them; a resumed run that sees something else
stops before storing a single number, instead of mixing two sources in one table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from robustbench_local.results.store import ResultsStore, StoreError

__all__ = ["module_digest", "pin", "tensor_digest"]

_DIGEST_CHARS = 16  # of sha256's 64 hex digits: ample to tell two sources apart


def _update(digest: Any, name: str, tensor: Tensor) -> None:  # digest: a hashlib object
    # Name, dtype and shape go in with the bytes: equal bytes in another layout are other data.
    data = tensor.detach().to("cpu").contiguous()
    header = f"{name}|{data.dtype}|{tuple(data.shape)}|".encode()
    digest.update(len(header).to_bytes(8, "big") + header)
    # As raw bytes (any dtype, bfloat16 included; flattened, as 0-dim tensors cannot be viewed).
    digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())


def tensor_digest(tensors: Iterable[Tensor]) -> str:
    """A short sha256 hex digest of tensors' dtypes, shapes and values, in order.

    Args:
        tensors: e.g. the evaluated inputs x (N, C, H, W) and labels y (N,).

    Returns:
        16 hex characters.
    """
    digest = hashlib.sha256()
    for index, tensor in enumerate(tensors):
        _update(digest, str(index), tensor)
    return digest.hexdigest()[:_DIGEST_CHARS]


def module_digest(module: nn.Module) -> str:
    """A short sha256 hex digest of every parameter and buffer of a module, by name.

    A DeepEnsemble covers all its members, an MCDropout wrapper the model it wraps.

    Args:
        module: the model as evaluated.

    Returns:
        16 hex characters.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        _update(digest, name, tensor)
    return digest.hexdigest()[:_DIGEST_CHARS]


def pin(store: ResultsStore, key: str, value: object, what: str, remedy: str) -> None:
    """Record value under meta key, or check that it equals what the store recorded.

    Args:
        store: the run's results store.
        key: the meta key, e.g. "inputs_digest".
        value: what this session sees (JSON-serialisable).
        what: the thing, for the error ("the evaluated images and labels").
        remedy: how to resume consistently, for the error.

    Raises:
        StoreError: the store recorded another value; nothing is written.
    """
    stored = store.get_meta(key)
    if stored is None:
        store.set_meta(key, value)
    elif stored != value:
        raise StoreError(
            f"{store.path}: {what} differ from those its stored results were computed with "
            f"(stored {stored!r}, now {value!r}); {remedy}, or start a new run folder "
            f"(--fresh or another --out). Results already stored are kept."
        )
