"""Explanations in the benchmark: where the model looks, clean against attacked, per job.

The [explain] table (`config.ExplainSettings`) composes the pure functions of
`robustbench_local.explain` into every attack job:

Per model, once (`ModelExplanation`, built by the model's first job in this process):

- the explained rows: a seeded subset of ``n_images`` evaluated images, plus the first rows
  whose images every job stores for the report's gallery (their maps are stored beside
  them). The subset depends on the run seed only, not on the model, so that every model is
  explained on the same images;
- the clean attribution maps of the true class on those rows;
- the concept directions: the top-k right singular vectors of the penultimate features of
  the clean evaluated images (all N up to `MAX_CONCEPT_IMAGES`, else a seeded subset of that
  many), with each direction's top exemplars (their indices and images go to the store).

Per job (`JobProbe`): the adversarial and the noise-control inputs of the explained rows are
collected batch by batch, then mapped and featurised once:

- ``attribution_similarity`` (``_noise``): the mean, over the subset, of the Spearman
  correlation of each image's clean and attacked (noisy) map. A row the attack left
  unchanged (every row at eps 0) reuses its clean map, so its similarity is exactly 1.0
  whatever the kernels' rounding;
- ``concept_shift`` (``_noise``): the mean, over the subset's rows whose input moved, of
  the share of ||f(x_adv) - f(x)||^2 that lies in the span of the directions; NaN when no
  row moved (eps 0: there is no shift to split), or when the model has no directions (no
  nn.Linear head; the record's note says why).

Everything runs on the fp32 evaluation view (an AMP `Autocast` is looked through: maps and
features of bfloat16 activations would rank pixels by rounding noise), and MC dropout is
explained with masks fixed by a seed derived from the run seed (the same for the clean, the
attacked and the noisy maps, so they differ by the input alone). Nothing here depends on the
order of jobs, so a resumed run stores the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from robustbench_local.bench.config import ExplainSettings
from robustbench_local.devices import Autocast
from robustbench_local.explain import (
    attribution_maps,
    attribution_similarity,
    concept_directions,
    concept_shift,
    penultimate_features,
    top_exemplars,
)
from robustbench_local.results.store import ConceptRecord, JobExplain

__all__ = [
    "EXEMPLARS",
    "MAX_CONCEPT_IMAGES",
    "Explainer",
    "JobProbe",
    "ModelExplanation",
    "ProbeResult",
    "fp32_view",
]

#: Clean images whose features make the concept directions, at most: the SVD of an
#: (N, D) float64 matrix and the features' memory stay bounded on a 10 000-image split.
MAX_CONCEPT_IMAGES = 2048
#: Top exemplars stored per direction.
EXEMPLARS = 8

SeedFn = Callable[..., int]


def fp32_view(model: nn.Module) -> nn.Module:
    """The module under an AMP `Autocast` (the evaluation view itself otherwise)."""
    return model.model if isinstance(model, Autocast) else model


def _seeded_subset(n_total: int, n_pick: int, seed: int) -> Tensor:
    """(min(n_pick, n_total),) int64 sorted row indices, a seeded random choice."""
    if n_pick >= n_total:
        return torch.arange(n_total)
    order = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return order[:n_pick].sort().values


def _in_chunks(fn: Callable[[Tensor], Tensor], x: Tensor, size: int) -> Tensor:
    """fn over x in chunks of `size` rows (the run's batch size bounds the memory)."""
    return torch.cat([fn(chunk) for chunk in x.split(size)])


@dataclass
class ModelExplanation:
    """What every job of one model compares against (computed once per model).

    Attributes:
        rows: (R,) int64 sorted sample indices of the explained rows, on the CPU (they
            index the evaluated set, which stays there).
        in_subset: (R,) bool, the rows of the ``n_images`` subset (the metrics' rows), on
            the device (it meets the device's masks).
        stored: (R,) bool, the rows whose images every job stores (their maps are stored),
            on the CPU.
        x, y: (R, C, H, W) clean inputs and (R,) labels, on the device.
        clean_maps: (R, H, W) clean attribution maps of the true class.
        clean_features: (R, D) penultimate features of the clean inputs; None without
            directions.
        directions: (k, D) concept directions; None when the model has none (see record).
        record: the model's concept record for the store.
    """

    rows: Tensor
    in_subset: Tensor
    stored: Tensor
    x: Tensor
    y: Tensor
    clean_maps: Tensor
    clean_features: Tensor | None
    directions: Tensor | None
    record: ConceptRecord


@dataclass
class ProbeResult:
    """A job's explanation: its metrics (`schema.EXPLAIN_METRICS`) and what to store."""

    metrics: dict[str, float]
    stored: JobExplain


class Explainer:
    """The per-model explanations of a run and the probes its jobs fill.

    Holds one model's `ModelExplanation` at a time (jobs arrive grouped by model).

    Args:
        settings: the [explain] table.
        x, y: the evaluated inputs (N, C, H, W) in [0, 1] and labels (N,), on the CPU.
        device: where the model runs.
        batch_size: rows per forward pass (the run's batch size).
        examples: the first rows whose images every job stores (runner.EXAMPLES_PER_JOB).
        seed: ``seed(*parts)`` -> a seed derived from the run seed and the parts.
    """

    def __init__(
        self,
        settings: ExplainSettings,
        x: Tensor,
        y: Tensor,
        device: torch.device,
        *,
        batch_size: int,
        examples: int,
        seed: SeedFn,
    ) -> None:
        self.settings = settings
        self.x, self.y, self.device = x, y, device
        self.batch_size = batch_size
        # The runner keeps its examples from the first batch, so never more than a batch.
        self.examples = min(examples, batch_size, len(y))
        self.seed = seed
        self._current: tuple[str, ModelExplanation] | None = None
        self._sent: set[str] = set()  # models whose concept record went out with a job

    def model(self, name: str, view: nn.Module) -> ModelExplanation:
        """The model's explanation, computed on first use (the previous model's dropped)."""
        if self._current is None or self._current[0] != name:
            self._current = None  # free the previous model's tensors first
            self._current = (name, self._explain_model(name, fp32_view(view)))
        return self._current[1]

    def probe(self, name: str, view: nn.Module) -> JobProbe:
        """A probe for one job of the model; the first of each model carries its record."""
        state = self.model(name, view)
        record = None if name in self._sent else state.record
        self._sent.add(name)
        return JobProbe(self, fp32_view(view), state, record)

    def maps(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """(R, H, W) attribution maps of class y, chunked as the clean maps were, so MC
        dropout masks match row for row."""
        seed = self.seed("explain", "masks")
        chunks = [
            attribution_maps(model, xs, ys, method=self.settings.method, seed=seed)
            for xs, ys in zip(x.split(self.batch_size), y.split(self.batch_size), strict=True)
        ]
        return torch.cat(chunks)

    def features(self, model: nn.Module, x: Tensor) -> Tensor:
        """(R, D) penultimate features, chunked."""
        return _in_chunks(lambda chunk: penultimate_features(model, chunk), x, self.batch_size)

    def _explain_model(self, name: str, model: nn.Module) -> ModelExplanation:
        n = len(self.y)
        subset = _seeded_subset(n, self.settings.n_images, self.seed("explain", "subset"))
        stored_rows = torch.arange(self.examples)
        rows = torch.unique(torch.cat([subset, stored_rows]))  # sorted
        in_subset = torch.isin(rows, subset).to(self.device)
        stored = rows < self.examples
        x = self.x[rows].to(self.device)
        y = self.y[rows].to(self.device)
        clean_maps = self.maps(model, x, y)
        values: dict[str, object] = {
            "method": self.settings.method,
            "n_images": len(subset),
            "subset": subset.tolist(),
            "k_requested": self.settings.k,
        }
        directions = clean_features = None
        exemplar_images = np.zeros((0,), dtype=np.float32)
        concept_rows = _seeded_subset(n, MAX_CONCEPT_IMAGES, self.seed("explain", "concepts"))
        try:
            features = self.features(model, self.x[concept_rows].to(self.device))
        except ValueError as error:  # a user model without an nn.Linear head, say
            values["note"] = f"no concept directions: {error}"
        else:
            k = min(self.settings.k, len(concept_rows) - 1, features.shape[1])
            if k < 1:
                values["note"] = "no concept directions: fewer than 2 evaluated images"
            else:
                directions = concept_directions(features, k)
                best = top_exemplars(features, directions, min(EXEMPLARS, len(concept_rows)))
                picked = concept_rows[best.cpu()]  # (k, n) sample indices
                exemplar_images = self.x[picked].numpy().astype(np.float32)
                clean_features = self.features(model, x)
                values.update(
                    k=k,
                    dims=int(features.shape[1]),
                    n_concept_images=len(concept_rows),
                    explained_variance=_explained_variance(features, directions),
                    exemplars=picked.tolist(),
                    exemplar_labels=self.y[picked].tolist(),
                )
        record = ConceptRecord(name, values, exemplar_images)
        return ModelExplanation(
            rows, in_subset, stored, x, y, clean_maps, clean_features, directions, record
        )


def _explained_variance(features: Tensor, directions: Tensor) -> float:
    """The share of the centred features' total variance that lies along the directions
    (what an attack shift "in the span" is compared with: the clean images' own share)."""
    data = features.detach().to(torch.float64)
    centred = data - data.mean(dim=0, keepdim=True)
    total = float(centred.pow(2).sum())
    along = float((centred @ directions.to(torch.float64).T).pow(2).sum())
    return along / total if total > 0 else math.nan


@dataclass
class JobProbe:
    """One job's explained rows, filled batch by batch (`add`), then measured (`finish`).

    Args:
        explainer: the run's `Explainer`.
        model: the fp32 evaluation view.
        state: the model's `ModelExplanation`.
        record: the concept record to store with this job (None: already sent).
    """

    explainer: Explainer
    model: nn.Module
    state: ModelExplanation
    record: ConceptRecord | None
    _adv: list[Tensor] = field(default_factory=list)
    _noise: list[Tensor] = field(default_factory=list)

    def add(self, rows: slice, x_adv: Tensor, x_noise: Tensor) -> None:
        """Keep the explained rows of one batch.

        Args:
            rows: the batch's slice of the evaluated set (consecutive, in order).
            x_adv, x_noise: (B, C, H, W) the batch's attacked and noisy inputs.
        """
        inside = (self.state.rows >= rows.start) & (self.state.rows < rows.stop)
        local = (self.state.rows[inside] - rows.start).to(x_adv.device)
        self._adv.append(x_adv[local].detach())
        self._noise.append(x_noise[local].detach())

    def finish(self) -> ProbeResult:
        """The job's explanation metrics and the stored examples' maps."""
        state = self.state
        adv, noise = torch.cat(self._adv), torch.cat(self._noise)
        if len(adv) != len(state.rows):
            raise RuntimeError(
                f"explain: the job handed {len(adv)} of its {len(state.rows)} explained rows; "
                "every batch must go through JobProbe.add"
            )
        metrics: dict[str, float] = {}
        adv_maps, adv_similarity = self._compare(adv, "", metrics)
        self._compare(noise, "_noise", metrics)
        stored = [
            (
                int(state.rows[i]),
                state.clean_maps[i].cpu().numpy().astype(np.float32),
                adv_maps[i].cpu().numpy().astype(np.float32),
                float(adv_similarity[i]),
            )
            for i in torch.nonzero(state.stored).flatten().tolist()
        ]
        return ProbeResult(metrics, JobExplain(stored, self.record))

    def _compare(
        self, inputs: Tensor, suffix: str, metrics: dict[str, float]
    ) -> tuple[Tensor, Tensor]:
        """Measure one kind of input (attacked or noisy) against the clean rows.

        Adds ``attribution_similarity{suffix}`` and ``concept_shift{suffix}`` to metrics.

        Returns:
            the inputs' maps (R, H, W) and each row's similarity to its clean map (R,).
        """
        state = self.state
        moved = (inputs != state.x).flatten(1).any(dim=1)
        maps = self._maps(inputs, moved)
        similarity = attribution_similarity(state.clean_maps, maps)
        metrics[f"attribution_similarity{suffix}"] = _mean(similarity[state.in_subset])
        metrics[f"concept_shift{suffix}"] = self._shift(inputs, moved & state.in_subset)
        return maps, similarity

    def _maps(self, inputs: Tensor, moved: Tensor) -> Tensor:
        """(R, H, W) maps of the inputs; an unmoved row keeps its clean map bit for bit."""
        if not bool(moved.any()):
            return self.state.clean_maps
        # All rows, not only the moved ones: MC dropout masks depend on the chunk's rows,
        # and the clean maps were made on these very chunks.
        maps = self.explainer.maps(self.model, inputs, self.state.y)
        return torch.where(moved[:, None, None], maps, self.state.clean_maps)

    def _shift(self, inputs: Tensor, moved: Tensor) -> float:
        """Mean concept shift over the moved subset rows; NaN when none moved or the model
        has no directions."""
        state = self.state
        if state.directions is None or state.clean_features is None or not bool(moved.any()):
            return math.nan
        shifted = self.explainer.features(self.model, inputs[moved])
        return _mean(concept_shift(state.clean_features[moved], shifted, state.directions))


def _mean(values: Tensor) -> float:
    return float(values.double().mean()) if values.numel() else math.nan
