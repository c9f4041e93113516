"""Monte Carlo dropout (Gal and Ghahramani 2016): dropout kept on at test time, T samples."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._modes import eval_mode
from ._rng import GeneratorLike, SeedSource, device_generator
from ._validation import check_positive_int, looks_like_probabilities, warn_probabilities
from .predictive import SampledClassifier

#: Dropout layers MC dropout drives. Functional calls such as `F.dropout(x, training=self.training)`
#: inside a model's forward are not layers: they are off, as in eval mode.
DROPOUT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)
_FEATURE_LAYERS = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout)
_ALPHA_LAYERS = (nn.AlphaDropout, nn.FeatureAlphaDropout)
# Default rows per forward pass (see MCDropout's `max_batch`).
_CPU_ROWS = 512
_ACCELERATOR_ROWS = 4096
# SELU's negative saturation, -lambda * alpha, as in ATen's alpha dropout.
_SELU_SATURATION = 1.7580993408473766


@dataclass
class _ChunkState:
    """What the mask hooks need to know about the forward pass in progress."""

    batch: int
    generators: list[torch.Generator] = field(default_factory=list)


def _keep_mask(module: nn.Module, output: Tensor, state: _ChunkState) -> Tensor:
    """Bernoulli(1 - p) keep mask for one dropout layer's output, one generator per sample."""
    p = float(module.p)  # type: ignore[arg-type]
    rows = output.shape[0]
    if isinstance(module, _FEATURE_LAYERS) and output.ndim >= 3:
        # Channel-wise: one draw per (row, channel), broadcast over the spatial dims.
        tail = (output.shape[1],) + (1,) * (output.ndim - 2)
    else:
        tail = tuple(output.shape[1:])
    # Uniforms in float32 whatever the model's dtype, so masks do not depend on it.
    uniforms = torch.empty((rows, *tail), device=output.device, dtype=torch.float32)
    batch = state.batch
    if rows == len(state.generators) * batch:
        # Sample s fills its own rows from its own generator: no dependence on the chunking.
        for s, generator in enumerate(state.generators):
            uniforms[s * batch : (s + 1) * batch].uniform_(generator=generator)
    else:
        # The layer's rows are not (sample, input) pairs (a model that reshapes its batch):
        # still independent masks, but they now depend on how the samples were chunked.
        uniforms.uniform_(generator=state.generators[0])
    return (uniforms < 1.0 - p).to(output.dtype)


def _apply_dropout(module: nn.Module, output: Tensor, state: _ChunkState) -> Tensor:
    """The train-mode dropout of `module` applied to its (eval-mode, identity) output."""
    p = float(module.p)  # type: ignore[arg-type]
    if p >= 1.0:
        return output * 0.0  # as torch: everything dropped, gradient 0
    keep = _keep_mask(module, output, state)
    if isinstance(module, _ALPHA_LAYERS):
        # ATen's alpha dropout: dropped units go to SELU's saturation, then an affine map
        # restores zero mean and unit variance.
        a = 1.0 / math.sqrt((_SELU_SATURATION**2 * p + 1.0) * (1.0 - p))
        b = (keep - 1.0) * (_SELU_SATURATION * a) + _SELU_SATURATION * a * p
        return output * (keep * a) + b
    return output * keep * (1.0 / (1.0 - p))


class MCDropout(SampledClassifier):
    """MC dropout wrapper: a stochastic classifier with T dropout samples per input.

    Every layer runs in eval mode (BatchNorm uses and keeps its running statistics) except the
    dropout layers, which stay active whatever mode the wrapper or the model is in, so
    `.eval()` (as attacks call it) does not switch the sampling off. The model's per-module
    `training` flags are restored after each call and no parameter or buffer is changed.
    The T samples are drawn in batched forwards: the batch is repeated and run in chunks of at
    most `max_batch` rows (at least one sample per chunk), not in T Python calls.

    Reproducibility: each forward call draws one integer seed per sample from the seed source
    (see `generator`); sample s's dropout masks are drawn from a generator on the input's device
    seeded with seed s. So for the same source state, the same input shape, device type and
    torch version, the masks are identical, whatever `max_batch` is. CPU and CUDA generators
    produce different streams: a seed reproduces CPU runs on CPU and CUDA runs on CUDA, not one
    from the other. On CUDA the masks are exact; the logits are as deterministic as the model's
    kernels (set `torch.backends.cudnn.deterministic = True` for bitwise repeats).

    Args:
        model: a classifier with at least one dropout layer (`nn.Dropout`, `Dropout1d/2d/3d`,
            `AlphaDropout`, `FeatureAlphaDropout`) with p > 0.
        samples: T, the number of dropout samples per input.
        generator: the seed source. None: torch's global RNG (`torch.manual_seed` makes runs
            repeat); an int: a private generator seeded with it, advanced by every call (a new
            wrapper with the same int, or `manual_seed`, replays the sequence); a
            torch.Generator: used as given, the caller owns its state.
        max_batch: the most rows (samples x batch) per forward pass. None (default) picks
            4096 rows on an accelerator and 512 on the CPU: on CPU, big repeated batches fall
            out of cache, and 4096 rows were measured 2.4x slower than a plain loop of T calls
            for a small CNN at B = 256 (512 rows: as fast as the loop). Under
            `torch.no_grad()` this bounds the activations in memory; with gradients on
            (attacks), every chunk's activations are kept for the backward pass, so memory
            grows with T x B whatever the chunking.

    Raises:
        ValueError: when the model has no dropout layer with p > 0.

    Warns:
        UserWarning: when the model's outputs look like probabilities (it ends in softmax):
            it must return logits.
    """

    #: New dropout masks on every call, in every mode: attacks treat the wrapper as stochastic
    #: (highest-loss iterate, no early stop; see `SampledClassifier.stochastic`).
    stochastic = True

    def __init__(
        self,
        model: nn.Module,
        samples: int = 30,
        generator: GeneratorLike = None,
        *,
        max_batch: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module; got {type(model).__name__}")
        self.model = model
        self.samples = check_positive_int(samples, "samples")
        self.max_batch = None if max_batch is None else check_positive_int(max_batch, "max_batch")
        self._seeds = SeedSource(generator)
        if not self.dropout_layers():
            found = [
                f"{name} (p={m.p})"
                for name, m in model.named_modules()  # type: ignore[attr-defined]
                if isinstance(m, DROPOUT_LAYERS)
            ]
            raise ValueError(
                "model must contain a dropout layer with p > 0 for MC dropout; found "
                f"{', '.join(found) if found else 'no dropout layer'} "
                f"(layer types looked for: {', '.join(t.__name__ for t in DROPOUT_LAYERS)})"
            )

    def dropout_layers(self) -> list[nn.Module]:
        """The model's dropout layers with p > 0, which MC dropout keeps active.

        Returns:
            The layers, in `model.modules()` order.
        """
        return [
            m
            for m in self.model.modules()
            if isinstance(m, DROPOUT_LAYERS) and m.p > 0  # type: ignore[attr-defined]
        ]

    def rows_per_forward(self, device: torch.device) -> int:
        """The row budget of one forward pass on `device` (`max_batch`, or its default there).

        Args:
            device: where the inputs live.

        Returns:
            The most rows (samples x batch) per forward pass; at least one sample always runs.
        """
        if self.max_batch is not None:
            return self.max_batch
        return _CPU_ROWS if device.type == "cpu" else _ACCELERATOR_ROWS

    def manual_seed(self, seed: int) -> MCDropout:
        """Restart the seed source from `seed` (a private generator, as `generator=seed`).

        Args:
            seed: the new seed.

        Returns:
            self, for chaining.
        """
        self._seeds = SeedSource.from_seed(seed)
        return self

    def sample_log_probs(self, x: Tensor) -> Tensor:
        """Log-probabilities of the T dropout samples.

        Args:
            x: (B, ...) inputs.

        Returns:
            (T, B, K) log-probabilities.
        """
        batch = x.shape[0]
        seeds = self._seeds.seeds(self.samples)
        per_chunk = max(1, self.rows_per_forward(x.device) // max(batch, 1))
        state = _ChunkState(batch=batch)

        def hook(module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
            return _apply_dropout(module, output, state)

        handles = [layer.register_forward_hook(hook) for layer in self.dropout_layers()]
        chunks: list[Tensor] = []
        softmaxed = False
        try:
            # Dropout layers stay in eval mode too (identity); the hooks apply the masks. This
            # keeps every layer's mode untouched apart from the eval switch, restored below.
            with eval_mode(self):
                for start in range(0, self.samples, per_chunk):
                    chunk_seeds = seeds[start : start + per_chunk]
                    state.generators = [device_generator(x.device, s) for s in chunk_seeds]
                    repeats = len(chunk_seeds)
                    logits = self.model(x.repeat(repeats, *([1] * (x.ndim - 1))))
                    rows = repeats * batch
                    if not isinstance(logits, Tensor) or logits.ndim != 2 or len(logits) != rows:
                        shape = (
                            tuple(logits.shape)
                            if isinstance(logits, Tensor)
                            else type(logits).__name__
                        )
                        raise ValueError(
                            f"model(x) must return (B, K) logits, one row per input row; for "
                            f"{rows} input rows it returned {shape}"
                        )
                    softmaxed = softmaxed or looks_like_probabilities(logits)
                    chunks.append(F.log_softmax(logits, dim=-1).reshape(repeats, batch, -1))
        finally:
            for handle in handles:
                handle.remove()
            state.generators = []
        if softmaxed:
            warn_probabilities("model(x)")
        return torch.cat(chunks)

    def extra_repr(self) -> str:
        return f"samples={self.samples}, max_batch={self.max_batch}"
