"""One run as the figures and captions see it: its summary plus the store's per-sample rows.

Per-sample columns and example images are read from the (read-only) store on first use and
kept, so a figure and its caption read each job once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reports.headline import Headline, headline
from reports.palette import Palette
from reports.selection import (
    attack_order,
    clean_reference,
    corruption_order,
    deterministic_models,
    eps_values,
    model_order,
    ood_order,
    result,
    severities,
    strongest_attack,
)
from robustbench_local.results.records import Summary
from robustbench_local.results.store import ConceptRecord, JobKey, ResultsStore
from robustbench_local.results.summary import class_accuracies, robust_mask

__all__ = ["ClassGrid", "RunData"]

# (classes (C,), eps (E,), accuracy (C, E), samples per class (C,)): `RunData.class_worst_case`.
ClassGrid = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class RunData:
    """A run's summary, its headline numbers and lazy access to its per-sample rows.

    Args:
        summary: ``summarize(store)``.
        store: the run's store, open read-only for as long as figures are drawn.
        eps: the eps to zoom in on; default `selection.chosen_eps`.
    """

    summary: Summary
    store: ResultsStore
    eps: float | None = None
    _samples: dict[JobKey, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _concepts: dict[str, ConceptRecord] | None = field(default=None, repr=False)
    _class_grids: dict[str, ClassGrid] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.models = model_order(self.summary)
        self.attacks = attack_order(self.summary)
        self.eps_values = eps_values(self.summary)
        self.headline: Headline = headline(self.summary, self.eps)
        self.chosen_eps = self.headline.chosen_eps
        self.palette = Palette(model_order(self.summary, include_pending=True), self.attacks)
        self.corruptions = corruption_order(self.summary)
        self.severities = severities(self.summary)
        self.ood_sets = ood_order(self.summary)
        shifted = {r.model for r in self.summary.shift}
        self.shift_models = [m for m in self.models if m in shifted]
        with_ood = {r.model for r in self.summary.ood}
        self.ood_models = [m for m in self.models if m in with_ood]

    @property
    def norm(self) -> str:
        return self.summary.run.norm or "linf"

    @property
    def eps_label(self) -> str:
        """The x-axis label of every eps axis."""
        return f"epsilon ({self.norm} radius, pixel scale 0\u20131)"

    def strongest(self, model: str) -> JobKey | None:
        """The job of the model's strongest attack at the chosen eps, or None."""
        if self.chosen_eps is None:
            return None
        attack = strongest_attack(self.summary, model, self.chosen_eps)
        return None if attack is None else JobKey(model, attack, self.chosen_eps)

    def curve(self, model: str, attack: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(eps, value) of one stored metric over the model's jobs under one attack.

        Returns:
            two (P,) float64 arrays sorted by eps, jobs whose value is NaN or null left out.
        """
        points = [
            (r.eps, r.metric(metric)) for r in self.summary.rows_of(model) if r.attack == attack
        ]
        return _arrays(points)

    def worst_curve(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """(eps, robust accuracy against all attacks at once) for the model, sorted by eps."""
        points = [(w.eps, w.accuracy) for w in self.summary.worst_case if w.model == model]
        return _arrays(points)

    def strongest_curve(self, model: str, *metrics: str) -> tuple[np.ndarray, ...]:
        """(eps, metric values...) under the strongest attack at each eps.

        Returns:
            (eps (P,), one (P,) array per metric), sorted by eps; eps with no stored job
            (or a NaN accuracy) left out.
        """
        rows = []
        for eps in self.eps_values:
            attack = strongest_attack(self.summary, model, eps)
            row = None if attack is None else result(self.summary, model, attack, eps)
            if row is not None:
                rows.append((eps, *(row.metric(m) for m in metrics)))
        columns = np.array(rows, dtype=np.float64).reshape(len(rows), 1 + len(metrics))
        return tuple(columns[:, i] for i in range(columns.shape[1]))

    def class_worst_case(self, model: str) -> ClassGrid:
        """Worst-case robust accuracy (all the eps's attacks at once, per sample, as
        `summary.worst_case`) within each class, at each eps of the model's worst case.

        Returns:
            (classes (C,) int, sorted; eps (E,) sorted; accuracy (C, E), NaN where a class
            has no sample in an eps's jobs; samples per class (C,), the most over eps), all
            empty for a model without stored jobs.
        """
        if model in self._class_grids:  # a figure and its caption both ask
            return self._class_grids[model]
        rows = sorted((w for w in self.summary.worst_case if w.model == model), key=lambda w: w.eps)
        columns = []
        for w in rows:
            samples = [self.samples(JobKey(model, attack, w.eps)) for attack in w.attacks]
            robust = np.logical_and.reduce([robust_mask(s) for s in samples])
            columns.append(class_accuracies(samples[0]["label"], robust))
        classes = np.unique(np.concatenate([c for c, _, _ in columns] or [np.zeros(0, int)]))
        accuracy = np.full((len(classes), len(rows)), np.nan)
        counts = np.zeros(len(classes), dtype=np.int64)
        for j, (c, n, acc) in enumerate(columns):
            at = np.searchsorted(classes, c)
            accuracy[at, j] = acc
            counts[at] = np.maximum(counts[at], n)
        eps = np.array([w.eps for w in rows], dtype=np.float64)
        self._class_grids[model] = (classes.astype(np.int64), eps, accuracy, counts)
        return self._class_grids[model]

    def deterministic_models(self) -> list[str]:
        """Models whose stored epistemic uncertainty is 0 in every job (one plain network)."""
        return deterministic_models(self.summary)

    def by_severity(self, model: str, metric: str) -> dict[int, np.ndarray]:
        """Severity -> the metric of the model's corruption jobs there, one per corruption
        (in corruption order; NaN left out); severities with no value left out."""
        out = {}
        for severity in self.severities:
            values = np.array(
                [
                    r.metric(metric)
                    for corruption in self.corruptions
                    for r in self.summary.shift
                    if (r.model, r.corruption, r.severity) == (model, corruption, severity)
                ],
                dtype=np.float64,
            )
            values = values[~np.isnan(values)]
            if len(values):
                out[severity] = values
        return out

    def clean_reference(self, model: str) -> tuple[float, float]:
        """(accuracy, ECE) on the clean inputs: severity 0 (`selection.clean_reference`)."""
        return clean_reference(self.summary, model)

    def samples(self, key: JobKey) -> dict[str, np.ndarray]:
        """The job's per-sample columns (see ``ResultsStore.samples``)."""
        if key not in self._samples:
            self._samples[key] = self.store.samples(key)
        return self._samples[key]

    def examples(self, key: JobKey) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The job's stored (sample index, clean image, adversarial image), (C, H, W) each."""
        return self.store.examples(key)

    def explain_maps(self, key: JobKey) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
        """The job's stored (sample index, clean map (H, W), adversarial map, rank
        correlation); empty for a run without explanations."""
        return self.store.explain_maps(key)

    def concepts(self) -> dict[str, ConceptRecord]:
        """Model -> its stored concept directions' record (empty without explanations)."""
        if self._concepts is None:
            self._concepts = self.store.concepts()
        return self._concepts

    @property
    def explain_disabled(self) -> bool:
        """Whether the run's config turned explanations off ([explain] enabled = false)."""
        section = self.summary.run.config.get("explain")
        return isinstance(section, dict) and section.get("enabled") is False


def _arrays(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    points = sorted(p for p in points if np.isfinite(p[1]))
    eps = np.array([p[0] for p in points], dtype=np.float64)
    return eps, np.array([p[1] for p in points], dtype=np.float64)
