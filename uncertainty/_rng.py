"""Seeds for the stochastic heads: one integer seed per sample, drawn from a source the user picks.

Each sample gets its own generator on the input's device, seeded from the source. Its random
numbers then depend only on the source's state and the sample's index, not on how the samples
are split into forward passes, which is what makes chunked MC dropout reproducible.
"""

from __future__ import annotations

import torch

#: None: torch's global RNG (seed it with `torch.manual_seed`); int: a private seeded generator;
#: torch.Generator: used as given.
GeneratorLike = int | torch.Generator | None

# Seeds stay below 2**62 so they fit any generator's manual_seed on every backend.
_SEED_HIGH = 2**62


class SeedSource:
    """Draws per-sample seeds from the global RNG, a private seeded generator or a given one.

    Args:
        generator: None, an int seed, or a torch.Generator.
    """

    def __init__(self, generator: GeneratorLike = None) -> None:
        if isinstance(generator, bool) or not (
            generator is None or isinstance(generator, (int, torch.Generator))
        ):
            raise TypeError(
                "generator must be None, an int seed or a torch.Generator; "
                f"got {generator!r} ({type(generator).__name__})"
            )
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        self._generator = generator

    @classmethod
    def from_seed(cls, seed: int) -> SeedSource:
        """A private generator seeded with ``seed`` (what the heads' `manual_seed` restarts)."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int; got {seed!r} ({type(seed).__name__})")
        return cls(seed)

    def seeds(self, n: int) -> list[int]:
        """Draw `n` seeds, advancing the source.

        Args:
            n: how many seeds.

        Returns:
            `n` Python ints in [0, 2**62).
        """
        if self._generator is None:
            drawn = torch.randint(0, _SEED_HIGH, (n,), dtype=torch.int64)
        else:
            drawn = torch.randint(
                0,
                _SEED_HIGH,
                (n,),
                dtype=torch.int64,
                generator=self._generator,
                device=self._generator.device,
            )
        return [int(s) for s in drawn.tolist()]


def device_generator(device: torch.device, seed: int) -> torch.Generator:
    """A fresh generator on `device` seeded with `seed`.

    Args:
        device: where the random numbers will be drawn.
        seed: its seed.

    Returns:
        The seeded generator.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
