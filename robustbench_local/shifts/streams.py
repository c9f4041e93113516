"""One random stream per sample, so that a sample's corruption never depends on its batch.

A benchmark corrupts a test set in batches whose size depends on the device and on how the
work is sharded. If the noise were drawn for the whole batch from one generator, sample 7
would get different noise in a batch of 8 than in a batch of 64, and a run's numbers would
change with the batch size. Instead each sample owns a generator seeded from
(seed, purpose, severity, the sample's global index), and every draw for that sample comes
from it, in the same order whatever else is in the batch.

The generators live on the CPU: a draw is then the same on every device (CUDA generators
produce other numbers), and only the finished random tensor travels to the input's device.
The loop over samples touches only the draws; the image arithmetic stays batched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["SampleStreams", "check_indices", "stream_seed"]

# The dtype every draw is made in, whatever the working dtype: float64 draws would be other
# numbers than float32 ones from the same generator.
_DRAW_DTYPE = torch.float32


def stream_seed(seed: int, purpose: str, severity: int, index: int) -> int:
    """The seed of one sample's stream: a stable hash of what identifies it.

    blake2b rather than Python's ``hash``, which is salted per process for strings.

    Args:
        seed: the caller's seed.
        purpose: the corruption or OOD source name, so two corruptions of the same sample
            draw unrelated noise.
        severity: the severity (0 for OOD sources).
        index: the sample's global index in its dataset.

    Returns:
        a non-negative 63-bit integer for ``torch.Generator.manual_seed``.
    """
    key = f"{seed}\x1f{purpose}\x1f{severity}\x1f{index}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def check_indices(indices: Tensor | Sequence[int] | None, batch: int) -> list[int]:
    """The global sample indices as a list of ints, arange(batch) when None.

    Args:
        indices: None, or B integers: a 1-D integer tensor or a sequence of ints.
        batch: B, the number of samples they must match.

    Returns:
        B Python ints.

    Raises:
        TypeError: indices is neither None, an integer tensor nor a sequence of ints.
        ValueError: indices is not 1-D or its length is not B.
    """
    if indices is None:
        return list(range(batch))
    if isinstance(indices, Tensor):
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise TypeError(f"indices must be an integer tensor; got dtype {indices.dtype}")
        if indices.dim() != 1:
            raise ValueError(
                f"indices must be 1-D (B,) global sample indices; got shape {tuple(indices.shape)}"
            )
        values = [int(i) for i in indices.tolist()]
    elif isinstance(indices, Sequence) and not isinstance(indices, (str, bytes)):
        bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int)]
        if bad:
            raise TypeError(f"indices must hold ints; got {type(bad[0]).__name__} {bad[0]!r}")
        values = list(indices)
    else:
        raise TypeError(
            "indices must be None, a 1-D integer tensor or a sequence of ints; "
            f"got {type(indices).__name__}"
        )
    if len(values) != batch:
        raise ValueError(
            f"indices must give one index per sample: expected {batch}; got {len(values)}"
        )
    return values


class SampleStreams:
    """Per-sample random draws, stacked into (B, ...) tensors on the input's device.

    Each method draws, for every sample, from that sample's own CPU generator; a corruption
    must call the methods in an order that does not depend on the batch (it always does:
    the calls depend only on the corruption, severity and image shape).

    Args:
        seeds: one stream seed per sample (see `stream_seed`).
        device: where the stacked draws go.
        dtype: their floating dtype. Draws are always made in float32 and then converted,
            so a float64 batch gets the same noise as a float32 one.
    """

    def __init__(self, seeds: Sequence[int], device: torch.device, dtype: torch.dtype) -> None:
        self._generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.device = device
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self._generators)

    def _stack(self, draws: list[Tensor], shape: tuple[int, ...]) -> Tensor:
        if not draws:  # an empty batch still has the right trailing shape
            return torch.empty((0, *shape), dtype=self.dtype, device=self.device)
        return torch.stack(draws).to(self.device, self.dtype)

    def uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> Tensor:
        """(B, *shape) uniform draws in [low, high)."""
        draws = [
            torch.rand(shape, generator=g, dtype=_DRAW_DTYPE) * (high - low) + low
            for g in self._generators
        ]
        return self._stack(draws, shape)

    def normal(self, *shape: int) -> Tensor:
        """(B, *shape) standard normal draws."""
        draws = [torch.randn(shape, generator=g, dtype=_DRAW_DTYPE) for g in self._generators]
        return self._stack(draws, shape)

    def signs(self, *shape: int) -> Tensor:
        """(B, *shape) values -1.0 or +1.0, each with probability 1/2."""
        return torch.where(self.uniform(*shape) < 0.5, -1.0, 1.0).to(self.device, self.dtype)

    def poisson(self, rates: Tensor) -> Tensor:
        """Poisson counts with the given (B, ...) rates, drawn per sample on the CPU."""
        cpu = rates.detach().to("cpu", _DRAW_DTYPE)
        draws = [torch.poisson(r, generator=g) for r, g in zip(cpu, self._generators, strict=True)]
        return self._stack(draws, tuple(rates.shape[1:]))
