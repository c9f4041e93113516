"""The benchmark runner: plans the (model, attack, eps) jobs of a config and runs them.

Each job attacks the evaluation subset batch by batch, evaluates the model on the clean
and the adversarial inputs, and is stored in one transaction. Every random choice (attack
starts, dropout masks) is seeded from the run seed, the job and the batch's global index, so
the same config gives the same numbers on the CPU, and a resumed run continues exactly where
it stopped.

The runner is a planner and a dispatcher: the work left is cut into `Task` values (a job, or
a shard of its batches: [executor] shard_size), which an executor (`executor.LocalExecutor`,
`executors_ray.RayExecutor`) runs with the pure function `run_task` wherever it likes; only
this process writes the store, a job once all its shards are back (`merge_shards`).

A gradient attack on cross-entropy cannot move a sample whose softmax is saturated (its
cross-entropy input gradient is exactly zero in float32), so its row would overstate
robustness there; the runner re-attacks those samples with the margin loss (the margin
fallback) and counts them in the job's metrics (``margin_fallback``).
"""

from __future__ import annotations

import hashlib
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

import robustbench_local
from attacks.descent import eval_mode
from attacks.losses import margin
from robustbench_local.bench.attack_registry import (
    AttackEntry,
    attack_entry,
    attack_info,
    attack_params,
)
from robustbench_local.bench.builders import (
    BuiltModel,
    build_model,
    prepare_model,
    train_specs,
)
from robustbench_local.bench.config import Config, config_error, model_section
from robustbench_local.bench.diagnostics import diagnose, zero_gradient
from robustbench_local.bench.eot import TransformVerdicts, eot_metrics, judge_batch, transform_of
from robustbench_local.bench.executor import Executor, LocalExecutor, Shipped
from robustbench_local.bench.explain_jobs import Explainer
from robustbench_local.bench.preflight import build_checked_user_model, check_writable_folder
from robustbench_local.bench.protocol import (
    Predictions,
    job_metrics,
    matched_noise,
    predict,
    sample_columns,
)
from robustbench_local.bench.shift_jobs import (
    ShiftOutcome,
    evaluate_shift,
    load_ood_sets,
    plan_shifts,
)
from robustbench_local.devices import check_amp, resolve_device
from robustbench_local.results.provenance import module_digest, pin, tensor_digest
from robustbench_local.results.schema import META_ATTACKS, META_CLASS_NAMES, META_CONFIG
from robustbench_local.results.store import (
    JobExplain,
    JobKey,
    ResultsStore,
    ShiftKey,
    StoreError,
    TransformExample,
)
from robustbench_local.zoo.cache import cache_paths, default_cache_dir
from robustbench_local.zoo.datasets import (
    NotEnoughExamples,
    class_names,
    count_classes,
    data_fingerprint,
    dataset_info,
    load_tensors,
)

__all__ = [
    "DiagnosticsKey",
    "JobOutcome",
    "PreparedRun",
    "Resources",
    "RunData",
    "RunOptions",
    "Task",
    "derive_seed",
    "merge_shards",
    "plan_jobs",
    "plan_tasks",
    "plan_work",
    "prepare_run",
    "run_benchmark",
    "run_task",
]

EXAMPLES_PER_JOB = 8  # images kept per job for the report's gallery (from global batch 0)
BOUNDS = (0.0, 1.0)  # pixel space (docs/architecture.md): every dataset loads into [0, 1]


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (Python's hash() changes between processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what (the config)."""

    device: str = "auto"
    amp: bool = False
    quiet: bool = False
    cache_dir: Path | None = None
    retrain: bool = False


@dataclass
class JobOutcome:
    """What a job hands back to the runner for storing."""

    key: JobKey
    metrics: dict[str, float]
    samples: dict[str, np.ndarray]
    examples: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)
    seconds: float = 0.0
    model_digest: str = ""  # of the weights the job ran on (see provenance)
    explain: JobExplain | None = None  # [explain]: the examples' maps, the model's concepts
    # An EOT job's per-batch verdicts under fresh transformations (with the gallery drawn in
    # batch 0) and the robust fraction they are judged by; `merge_shards` joins them.
    transform_judgement: tuple[list[TransformVerdicts], float] | None = None

    @property
    def transform_examples(self) -> list[TransformExample]:
        """An EOT job's gallery: its images under random transformations (else empty)."""
        if self.transform_judgement is None:
            return []
        return [shot for verdicts in self.transform_judgement[0] for shot in verdicts.gallery]


@dataclass(frozen=True)
class DiagnosticsKey:
    """The gradient-masking measurements of one model (see `diagnostics.diagnose`)."""

    model: str


@dataclass
class DiagnosticsOutcome:
    """A model's diagnostics, handed back for storing."""

    model: str
    values: dict[str, float]
    model_digest: str = ""


Work = JobKey | DiagnosticsKey | ShiftKey
Outcome = JobOutcome | DiagnosticsOutcome | ShiftOutcome


def plan_work(config: Config, store: ResultsStore) -> list[Work]:
    """What is left to do: per model, its diagnostics, its attack jobs, then its shift
    jobs ([shift]), each once."""
    done_jobs, diagnosed = store.finished(), store.diagnostics().keys()
    done_shifts = store.finished_shifts()
    shifts = plan_shifts(config)
    work: list[Work] = []
    for model in config.models:
        if model.name not in diagnosed:
            work.append(DiagnosticsKey(model.name))
        work += [
            job for job in plan_jobs(config) if job.model == model.name and job not in done_jobs
        ]
        work += [k for k in shifts if k.model == model.name and k not in done_shifts]
    return work


def plan_jobs(config: Config) -> list[JobKey]:
    """Every job of the config, grouped by model so each model is built once."""
    return [
        JobKey(model.name, attack.label, eps)
        for model in config.models
        for attack in config.attacks
        for eps in config.sweep.eps
    ]


def _reseed(model: nn.Module, seed: int) -> None:
    """Fix a stochastic model's randomness (MC dropout masks); no-op for others."""
    reseed = getattr(model, "manual_seed", None)
    if callable(reseed):
        reseed(seed)


class Workbench:
    """Everything a job needs, built lazily: the data, the current model, its clean view.

    Only one model is held at a time; jobs arrive grouped by model (see `plan_jobs`).
    """

    def __init__(
        self,
        config: Config,
        x: Tensor,
        y: Tensor,
        device: torch.device,
        options: RunOptions,
        *,
        fingerprint: str,
        prebuilt: Mapping[str, nn.Module | Shipped[nn.Module]] | None = None,
        ood_sets: Mapping[str, Tensor] | None = None,
    ) -> None:
        self.config, self.x, self.y = config, x, y
        self.device, self.options = device, options
        self.specs = {m.name: m for m in config.models}
        self.attacks = {a.label: a for a in config.attacks}
        self._models: dict[str, BuiltModel] = {}  # at most one: the current model
        # Clean predictions and saturated masks of the current model, per global batch
        # (each seeded by its batch index, so computing them per shard gives the same).
        self._clean: dict[int, Predictions] = {}
        self._saturated: dict[tuple[str, int], Tensor] = {}  # (model, batch) -> (B,) bool
        self.digests: dict[str, str] = {}  # model -> digest of its weights, once built
        # The user's training files (imagefolder) key the cached models: read once per run.
        self.fingerprint = fingerprint
        # User models built and checked by prepare_run (or shipped to this worker).
        self._prebuilt = dict(prebuilt or {})
        self.ood_sets = dict(ood_sets or {})
        # [explain]: per-model maps and concept directions, compared by every job.
        self.explainer = (
            Explainer(
                config.explain,
                x,
                y,
                device,
                batch_size=config.run.batch_size,
                examples=EXAMPLES_PER_JOB,
                seed=lambda *parts: derive_seed(config.run.seed, *parts),
            )
            if config.explain.enabled
            else None
        )

    def batches(self) -> list[slice]:
        size = self.config.run.batch_size
        return [slice(i, min(i + size, len(self.y))) for i in range(0, len(self.y), size)]

    def shard_batches(self, shard: slice | None = None) -> list[tuple[int, slice]]:
        """(global batch index, rows) of the batches in shard (all of them for None); a
        shard starts on a batch boundary ([executor] shard_size is a multiple of it)."""
        start = 0 if shard is None or shard.start is None else shard.start
        stop = len(self.y) if shard is None or shard.stop is None else shard.stop
        return [(b, rows) for b, rows in enumerate(self.batches()) if start <= rows.start < stop]

    def _eval_seed(self, model: str, batch: int) -> int:
        # Clean and adversarial inputs see the same dropout masks (common random numbers),
        # so a difference between them comes from the input alone.
        return derive_seed(self.config.run.seed, model, "eval", batch)

    def model(self, name: str) -> BuiltModel:
        if name not in self._models:
            self._models.clear()  # free the previous model before building the next
            self._clean.clear()
            self._saturated.clear()
            prebuilt = self._prebuilt.get(name)
            if prebuilt is not None and not isinstance(prebuilt, nn.Module):
                prebuilt = prebuilt.get()  # shipped: fetched where the task runs
            self._models[name] = build_model(
                self.specs[name],
                self.config.run,
                device=self.device,
                cache_dir=self.options.cache_dir,
                amp=self.options.amp,
                fingerprint=self.fingerprint,
                prebuilt=prebuilt,
            )
            self.digests[name] = module_digest(self._models[name].evaluate)
        return self._models[name]

    def clean(self, name: str, shard: slice | None = None) -> Predictions:
        """The model's predictions on the clean batches of shard (all for None)."""
        model = self.model(name).evaluate
        for b, rows in self.shard_batches(shard):
            if b not in self._clean:
                _reseed(model, self._eval_seed(name, b))
                self._clean[b] = predict(model, self.x[rows].to(self.device), self.y[rows])[0]
        return Predictions.concat([self._clean[b] for b, _ in self.shard_batches(shard)])

    def diagnose(self, key: DiagnosticsKey) -> DiagnosticsOutcome:
        """Measure what the gradient-masking checks need for one model."""
        built, spec = self.model(key.model), self.specs[key.model]
        values = diagnose(
            built.attack,
            built.evaluate,
            self.x.to(self.device),
            self.y.to(self.device),
            bounds=BOUNDS,
            stochastic=spec.stochastic,
            seed=derive_seed(self.config.run.seed, key.model, "diagnostics"),
            sweep_eps=self.config.sweep.eps,
            norm=self.config.sweep.norm,
        )
        return DiagnosticsOutcome(key.model, values, self.digests[key.model])

    def saturated(self, model: str, batch: int, x: Tensor, y: Tensor) -> Tensor:
        """(B,) bool: the batch's samples whose cross-entropy input gradient at the clean
        input is all zero (measured once per model and batch: every job's margin fallback
        asks the same question)."""
        if (model, batch) not in self._saturated:
            attack_view = self.model(model).attack
            _reseed(attack_view, derive_seed(self.config.run.seed, model, "saturated", batch))
            self._saturated[(model, batch)] = zero_gradient(attack_view, x, y, "ce")
        return self._saturated[(model, batch)]

    def _margins(self, model: str, batch: int, x: Tensor, y: Tensor) -> Tensor:
        """(B,) margin of the evaluation view on x (> 0: fooled), under the batch's eval
        masks, so it agrees with the prediction the job stores for the same x."""
        built = self.model(model)
        _reseed(built.evaluate, self._eval_seed(model, batch))
        with torch.no_grad(), eval_mode(built.evaluate):
            return margin(built.evaluate(x), y)

    def _margin_fallback(
        self,
        job: JobKey,
        batch: int,
        entry: AttackEntry,
        params: dict[str, object],
        x: Tensor,
        y: Tensor,
        x_adv: Tensor,
    ) -> tuple[Tensor, int, int]:
        """Re-attack, with the margin loss, the samples a cross-entropy attack could not move.

        Those are the samples whose cross-entropy input gradient at the clean input is all
        zero (a saturated softmax, or a layer without gradient) and that x_adv does not
        fool. The margin result is kept where its margin is higher (which includes every
        sample it fools).

        Args:
            job, batch: the job and the batch index (seeds).
            entry, params: the attack and the parameters it ran with.
            x, y: the clean batch (B, ...), (B,); x_adv: the attack's result (B, ...).

        Returns:
            the new x_adv (B, ...), the number of samples re-attacked and how many of them
            are now fooled.
        """
        built = self.model(job.model)
        seed = derive_seed(self.config.run.seed, job.model, job.attack, job.eps, batch, "margin")
        saturated = self.saturated(job.model, batch, x, y)
        if not bool(saturated.any()):  # the common case: nothing to do
            return x_adv, 0, 0
        before = self._margins(job.model, batch, x_adv, y)
        redo = saturated & (before <= 0)
        if not bool(redo.any()):
            return x_adv, 0, 0
        _reseed(built.attack, seed)
        retried = entry.run(
            built.attack,
            x[redo],
            y[redo],
            job.eps,
            norm=self.config.sweep.norm,
            generator=torch.Generator(device=self.device).manual_seed(seed),
            **{**params, "loss": "margin"},
        )
        candidate = x_adv.clone()
        candidate[redo] = retried
        after = self._margins(job.model, batch, candidate, y)
        keep = redo & (after > before)
        x_adv = torch.where(keep.view(-1, *[1] * (x.dim() - 1)), candidate, x_adv)
        fooled = redo & torch.where(keep, after, before).gt(0)
        return x_adv, int(redo.sum()), int(fooled.sum())

    def evaluate(
        self,
        job: JobKey,
        progress: Callable[[], None] | None = None,
        shard: slice | None = None,
    ) -> JobOutcome:
        """Run one job, or the shard of its batches: attack every batch, evaluate, aggregate.

        A shard's outcome holds its rows' samples and the metrics of those rows alone; the
        runner joins the shards of a job with `merge_shards`."""
        started = time.perf_counter()
        shard = slice(0, len(self.y)) if shard is None else shard
        whole = shard.start == 0 and shard.stop >= len(self.y)
        attack = self.attacks[job.attack]
        entry = attack_entry(attack.name)
        spec = self.specs[job.model]
        params = attack_params(entry, attack.params, stochastic=spec.stochastic)
        # Only a gradient attack on cross-entropy stalls on a saturated softmax.
        fallback = entry.kind == "gradient" and entry.loss(params) == "ce" and job.eps > 0
        covered = fooled_after = 0
        transform = transform_of(params)  # an EOT attack's: its examples are judged under it
        verdicts: list[TransformVerdicts] = []
        built, clean = self.model(job.model), self.clean(job.model, shard)
        if self.explainer is not None and not whole:
            raise ValueError("[explain] compares whole jobs: it needs whole-split tasks")
        probe = None if self.explainer is None else self.explainer.probe(job.model, built.evaluate)
        adv_parts, noise_parts, linf, l2, examples = [], [], [], [], []
        for b, rows in self.shard_batches(shard):
            x, y = self.x[rows].to(self.device), self.y[rows].to(self.device)
            if job.eps == 0.0:
                x_adv = x  # no perturbation budget: the clean input is the answer
            else:
                seed = derive_seed(self.config.run.seed, job.model, job.attack, job.eps, b)
                _reseed(built.attack, seed)
                generator = torch.Generator(device=self.device).manual_seed(seed)
                x_adv = entry.run(
                    built.attack,
                    x,
                    y,
                    job.eps,
                    norm=self.config.sweep.norm,
                    generator=generator,
                    **params,
                )
                if fallback:
                    x_adv, n_redo, n_fooled = self._margin_fallback(
                        job, b, entry, params, x, y, x_adv
                    )
                    covered, fooled_after = covered + n_redo, fooled_after + n_fooled
            if transform is not None:
                verdicts.append(
                    judge_batch(
                        built.evaluate,
                        x,
                        x_adv,
                        y,
                        transform,
                        params,
                        seed=derive_seed(
                            self.config.run.seed, job.model, job.attack, job.eps, b, "transform"
                        ),
                        first_index=rows.start,
                        gallery=b == 0,
                        reseed=lambda b=b: _reseed(built.evaluate, self._eval_seed(job.model, b)),
                    )
                )
            _reseed(built.evaluate, self._eval_seed(job.model, b))
            adv_parts.append(predict(built.evaluate, x_adv, y)[0])
            noise_seed = derive_seed(
                self.config.run.seed, job.model, job.attack, job.eps, b, "noise"
            )
            x_noise = matched_noise(
                x, x_adv, self.config.sweep.norm, BOUNDS, torch.Generator().manual_seed(noise_seed)
            )
            _reseed(built.evaluate, self._eval_seed(job.model, b))
            noise_parts.append(predict(built.evaluate, x_noise, y)[0])
            if probe is not None:
                probe.add(rows, x_adv, x_noise)
            delta = (x_adv - x).flatten(1).double()
            linf.append(delta.abs().amax(dim=1).cpu().numpy())
            l2.append(delta.norm(dim=1).cpu().numpy())
            if b == 0:
                keep = min(EXAMPLES_PER_JOB, len(y))
                examples = [(i, x[i].cpu().numpy(), x_adv[i].cpu().numpy()) for i in range(keep)]
            if progress is not None:
                progress()
        samples = sample_columns(
            self.y[shard].numpy(),
            clean,
            Predictions.concat(adv_parts),
            Predictions.concat(noise_parts),
            np.concatenate(linf),
            np.concatenate(l2),
        )
        samples["idx"] = samples["idx"] + shard.start  # the rows' indices in the split
        metrics = job_metrics(samples)
        if fallback:
            metrics["margin_fallback"] = float(covered)
            metrics["margin_fallback_fooled"] = float(fooled_after)
        judgement = (verdicts, float(params["robust_fraction"])) if verdicts else None
        if judgement is not None:
            clean_correct = samples["clean_pred"] == samples["label"]
            metrics.update(eot_metrics(verdicts, clean_correct, judgement[1]))
        explained = None if probe is None else probe.finish()
        if explained is not None:
            metrics.update(explained.metrics)
        return JobOutcome(
            job,
            metrics,
            samples,
            examples,
            time.perf_counter() - started,
            self.digests[job.model],
            None if explained is None else explained.stored,
            judgement,
        )


@dataclass
class PreparedRun:
    """What `prepare_run` loaded and built, handed to the run so that nothing is done twice.

    Attributes:
        x, y: the evaluated inputs (N, C, H, W) in [0, 1] and labels (N,).
        fingerprint: the run's `datasets.data_fingerprint` (keys cached imagefolder models).
        num_classes: K, the dataset's number of classes (an image folder's class folders).
        user_models: model name -> the user's model, built from its factory and checkpoint
            and checked (on the CPU, in eval mode).
        warnings: one line each, naming the model (outputs that look like probabilities).
        ood_sets: the [shift] OOD sets that are other datasets, in the run's image shape.
    """

    x: Tensor
    y: Tensor
    fingerprint: str
    num_classes: int
    user_models: dict[str, nn.Module] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    ood_sets: dict[str, Tensor] = field(default_factory=dict)


def _load_inputs(config: Config) -> tuple[Tensor, Tensor]:
    """The evaluated subset, with a failure reported against the [run] key that causes it."""
    run = config.run
    try:
        return load_tensors(
            run.dataset,
            run.split,
            n_examples=run.n_examples,
            seed=run.seed,
            data_root=run.data_root,
            download=run.download,
        )
    except NotEnoughExamples as err:
        raise config_error(
            config.source,
            "[run]",
            f"must be at most {err.available}, the number of examples in dataset "
            f"{err.dataset!r} split {err.split!r}; got {err.requested} (leave n_examples "
            f"out to evaluate the whole split)",
            "n_examples",
        ) from err
    except (ValueError, OSError) as err:
        raise config_error(
            config.source,
            "[run]",
            f"could not load dataset {run.dataset!r} split {run.split!r}: {err}",
            "data_root" if run.data_root is not None else "dataset",
        ) from err


def prepare_run(config: Config, out_dir: Path | None, options: RunOptions) -> PreparedRun:
    """Every check that needs the data, a built model or the file system, before any work.

    In order: the evaluated split loads and holds n_examples; each zoo model's training
    spec is valid for the dataset (an image folder's classes included); each user model
    builds, loads its checkpoint and returns finite logits (B, K) for a few real inputs on
    the run's device; the run folder and, when a checkpoint must be trained, the cache are
    writable. Nothing is written but the cache folder (created, last, when training is due).

    Args:
        config: the validated config.
        out_dir: the run folder (created later, under its lock); None skips its check.
        options: the device, the cache folder, retraining.

    Returns:
        the `PreparedRun` for `run_benchmark`.

    Raises:
        ConfigError: naming the file, the section and the key.
        NotWritableError: naming the folder and what to do.
    """
    device = resolve_device(options.device)
    check_amp(options.amp, device)
    run = config.run
    x, y = _load_inputs(config)
    ood_sets = load_ood_sets(config, x)
    fingerprint = data_fingerprint(run.dataset, run.data_root)
    try:
        num_classes = count_classes(run.dataset, run.data_root)
    except (ValueError, OSError) as err:
        raise config_error(config.source, "[run]", str(err), "data_root") from err
    classes = f"dataset {run.dataset!r} has {num_classes} classes"
    if run.data_root is not None and dataset_info(run.dataset).num_classes is None:
        classes += f" (its class folders under {run.data_root!r})"

    shard_size = config.executor.shard_size
    if config.explain.enabled and shard_size is not None and shard_size < len(y):
        raise config_error(
            config.source,
            "[executor]",
            f"[explain] compares whole jobs (its maps, its concept directions): shards of "
            f"{shard_size} of the {len(y)} examples cannot run with it; leave shard_size out "
            f"or set [explain] enabled = false",
            "shard_size",
        )

    to_train = options.retrain
    for spec in config.models:
        if spec.zoo is None:
            continue
        try:
            specs = train_specs(spec, run, fingerprint)
        except (ValueError, TypeError) as err:
            raise config_error(config.source, model_section(spec.name), str(err), "train") from err
        to_train = to_train or any(
            not cache_paths(s, options.cache_dir).weights.is_file() for s in specs
        )

    user_models: dict[str, nn.Module] = {}
    notes: list[str] = []
    for spec in config.models:
        if spec.factory is None:
            continue
        model, warning = build_checked_user_model(
            spec, config.source, x, num_classes, classes, device
        )
        user_models[spec.name] = model
        if warning is not None:
            notes.append(warning)

    if out_dir is not None:
        check_writable_folder(
            out_dir, "output folder", "choose another --out, or make it writable", create=False
        )
    if to_train:
        check_writable_folder(
            options.cache_dir or default_cache_dir(),
            "checkpoint cache",
            "pass --cache-dir (or set RBL_CACHE_DIR) to a writable folder",
            create=True,
        )
    return PreparedRun(x, y, fingerprint, num_classes, user_models, tuple(notes), ood_sets)


def _check_store(store: ResultsStore, config: Config) -> None:
    stored = store.get_meta("digest")
    if stored is not None and stored != run_digest(config):
        raise StoreError(
            f"{store.path} holds results of another config or version (digest {stored}, "
            f"this run {run_digest(config)}); choose another --out folder, or --fresh"
        )


def run_digest(config: Config) -> str:
    """The config's digest extended by the package version: results of older code differ."""
    return derive_seed(config.digest(), robustbench_local.__version__).to_bytes(8, "big").hex()


def run_benchmark(
    config: Config,
    out_dir: Path,
    options: RunOptions = RunOptions(),
    executor: Executor | None = None,
    *,
    prepared: PreparedRun | None = None,
) -> ResultsStore:
    """Run (or resume) a benchmark into ``out_dir``; returns the open results store.

    Args:
        config: the validated config.
        out_dir: the run folder; ``results.sqlite`` inside it is created or resumed.
        options: device, AMP, progress display, cache folder, retraining.
        executor: where tasks run (default: `LocalExecutor`, in this process); the caller
            closes it.
        prepared: what `prepare_run` returned for this config and options (the CLI checks
            before it takes the run folder's lock); None runs `prepare_run` here, before the
            folder is created, and issues its warnings with `warnings.warn`.
    """
    if prepared is None:
        prepared = prepare_run(config, out_dir, options)
        for note in prepared.warnings:
            warnings.warn(note, UserWarning, stacklevel=2)
    device = resolve_device(options.device)
    check_amp(options.amp, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out_dir / "results.sqlite")
    try:
        _run_into(store, config, device, options, executor or LocalExecutor(), prepared)
    except BaseException:
        # Close even on failure (a refused resume, Ctrl-C): the jobs already stored stay,
        # and the next process finds the file free.
        store.close()
        raise
    return store


def _run_into(
    store: ResultsStore,
    config: Config,
    device: torch.device,
    options: RunOptions,
    executor: Executor,
    prepared: PreparedRun,
) -> None:
    """Check the store against this run, then do every job it does not hold yet."""
    _check_store(store, config)
    pin(
        store,
        "numerics",
        {"device": device.type, "amp": options.amp},
        "the device kind and precision",
        "resume with the --device and --amp it started with",
    )
    store.set_meta("digest", run_digest(config))
    store.set_meta(META_CONFIG, config.to_dict())
    # What readers of the results (checks, summary, report) need of each attack, stored so
    # that they never import the registry.
    store.set_meta(
        META_ATTACKS,
        {a.label: attack_info(a.name, a.params).to_dict() for a in config.attacks},
    )
    store.set_meta("config_source", config.source)
    store.set_meta("environment", {**_environment(device, options), **executor.describe()})
    store.set_meta("complete", False)

    run = config.run
    x, y = prepared.x, prepared.y
    pin(
        store,
        "inputs_digest",
        tensor_digest([x, y]),
        "the evaluated images and labels",
        "restore the dataset files the run started with",
    )
    store.set_meta("n_examples", len(y))
    # The per-class rows and figure name classes by these (reports never load the dataset).
    store.set_meta(META_CLASS_NAMES, list(class_names(run.dataset, run.data_root)))
    pending = plan_work(config, store)
    show = not options.quiet
    for name in dict.fromkeys(item.model for item in pending):
        prepare_model(
            next(m for m in config.models if m.name == name),
            run,
            device=device,
            cache_dir=options.cache_dir,
            retrain=options.retrain,
            progress=show,
            fingerprint=prepared.fingerprint,
        )

    tasks = plan_tasks(config, pending, len(y))
    resources = Resources(
        token=uuid.uuid4().hex,
        config=config,
        device=str(device),
        options=options,
        fingerprint=prepared.fingerprint,
        data=executor.ship(RunData(x, y, prepared.ood_sets)),
        # Once per model, fetched only by the tasks of that model.
        user_models={
            name: executor.ship(model)
            for name, model in prepared.user_models.items()
            if any(item.model == name for item in pending)
        },
    )
    # Every failure recorded so far belongs to a task planned again now.
    store.clear_failures()
    shards: dict[JobKey, list[JobOutcome]] = {}
    failed: set[Work] = set()
    try:
        with tqdm(total=len(tasks), desc="tasks", unit="task", disable=not show) as bar:
            for done in executor.run(
                run_task, tasks, resources, max_retries=config.executor.max_retries
            ):
                bar.update(1)
                task = done.task
                bar.set_postfix_str(task.describe())
                if done.outcome is None or task.key in failed:
                    if task.key not in failed:
                        failed.add(task.key)
                        shards.pop(task.key, None)  # type: ignore[call-overload]
                        store.write_failure(
                            task.kind, task.key_dict(), done.error or "", done.attempts
                        )
                    continue
                outcome = done.outcome
                if isinstance(task.key, JobKey) and task.shards > 1:
                    parts = shards.setdefault(task.key, [])
                    parts.append(outcome)  # type: ignore[arg-type]
                    if len(parts) < task.shards:
                        continue  # the job is written once all its shards are back
                    outcome = merge_shards(shards.pop(task.key))
                _store_outcome(store, outcome)
    finally:
        release_workbench()
    store.set_meta("complete", not failed)


def _store_outcome(store: ResultsStore, outcome: Outcome) -> None:
    """Write one finished unit of work (a job, a model's diagnostics, a shift job)."""
    model = outcome.model if isinstance(outcome, DiagnosticsOutcome) else outcome.key.model
    pin(
        store,
        f"model_digest:{model}",
        outcome.model_digest,
        f"the weights of model {model!r}",
        "restore the checkpoints it started with (a cleared cache retrains, and "
        "another device or thread count trains other weights)",
    )
    if isinstance(outcome, DiagnosticsOutcome):
        store.write_diagnostics(outcome.model, outcome.values)
    elif isinstance(outcome, ShiftOutcome):
        store.write_shift_job(outcome.key, outcome.metrics, outcome.samples, outcome.seconds)
    else:
        store.write_job(
            outcome.key,
            outcome.metrics,
            outcome.samples,
            outcome.examples,
            outcome.seconds,
            explain=outcome.explain,
            transform_examples=outcome.transform_examples,
        )


#: Job metrics that are counts over samples: a job cut into shards sums its shards' counts.
#: Every other metric of a sharded job is recomputed from its joined samples (`job_metrics`).
SUMMED_METRICS = ("margin_fallback", "margin_fallback_fooled")


def merge_shards(parts: list[JobOutcome]) -> JobOutcome:
    """One job's outcome from the outcomes of its shards (in any order).

    The per-sample columns are joined in row order and the metrics recomputed from them with
    `job_metrics`, as the job computes them on the whole split; the counts in
    `SUMMED_METRICS` are summed, and an EOT job's transformation metrics are recomputed from
    its shards' per-sample verdicts (`eot.eot_metrics`). A job of one shard is returned as
    it is.

    Raises:
        ValueError: shards that ran on other weights, or a metric that is neither
            recomputed nor summed (a new per-job metric must say how shards join).
    """
    parts = sorted(parts, key=lambda p: int(p.samples["idx"][0]))
    if len(parts) == 1:
        return parts[0]
    key = parts[0].key
    digests = {p.model_digest for p in parts}
    if len(digests) > 1:
        raise ValueError(f"the shards of job {key} ran on different weights: {sorted(digests)}")
    samples = {c: np.concatenate([p.samples[c] for p in parts]) for c in parts[0].samples}
    metrics = job_metrics(samples)
    judged = [p.transform_judgement for p in parts if p.transform_judgement is not None]
    judgement = None
    if judged:  # an EOT job: its shares among the correct samples, from the joined verdicts
        judgement = ([v for batch_verdicts, _ in judged for v in batch_verdicts], judged[0][1])
        clean_correct = samples["clean_pred"] == samples["label"]
        metrics.update(eot_metrics(judgement[0], clean_correct, judgement[1]))
    for name in SUMMED_METRICS:
        if any(name in p.metrics for p in parts):
            metrics[name] = float(sum(p.metrics.get(name, 0.0) for p in parts))
    unknown = sorted({m for p in parts for m in p.metrics} - metrics.keys())
    if unknown:
        raise ValueError(
            f"metric(s) {unknown} of job {key} cannot be joined across shards: add them to "
            f"SUMMED_METRICS, or compute them in job_metrics"
        )
    return JobOutcome(
        key,
        metrics,
        samples,
        [e for p in parts for e in p.examples],  # only the shard of batch 0 keeps them
        sum(p.seconds for p in parts),
        parts[0].model_digest,
        None,
        judgement,
    )


def _shift(bench: Workbench, key: ShiftKey) -> ShiftOutcome:
    """Run one shift job on the bench's current model (see `shift_jobs.evaluate_shift`)."""
    built = bench.model(key.model)
    metrics, samples, seconds = evaluate_shift(
        key,
        model=built.evaluate,
        clean=bench.clean(key.model),
        x=bench.x,
        y=bench.y,
        batches=bench.batches(),
        seed=bench.config.run.seed,
        ood_sets=bench.ood_sets,
        device=bench.device,
        reseed=lambda b: _reseed(built.evaluate, bench._eval_seed(key.model, b)),
    )
    return ShiftOutcome(key, metrics, samples, seconds, bench.digests[key.model])


@dataclass(frozen=True)
class Task:
    """One unit the executors run: a model's diagnostics, a shift job, or an attack job or
    the shard of it that holds rows [start, stop) of the evaluated split.

    Small and picklable: the data, the models and the config travel in `Resources`. Every
    seed a task uses derives from the run seed, its key and each batch's global index, so
    its outcome does not depend on where, when or in what order it runs.

    Attributes:
        key: the unit of work.
        start, stop: the shard's rows (stop None: to the end); whole batches.
        shards: how many tasks the job is cut into (the runner waits for all of them).
    """

    key: Work
    start: int = 0
    stop: int | None = None
    shards: int = 1

    @property
    def kind(self) -> str:
        """ "job", "diagnostics" or "shift" (how the store's failed table names it)."""
        if isinstance(self.key, DiagnosticsKey):
            return "diagnostics"
        return "shift" if isinstance(self.key, ShiftKey) else "job"

    def key_dict(self) -> dict[str, object]:
        """The key's fields (the failed table stores them as JSON)."""
        return {f: getattr(self.key, f) for f in self.key.__dataclass_fields__}

    def describe(self) -> str:
        key = self.key
        if isinstance(key, DiagnosticsKey):
            text = f"{key.model} / gradient-masking diagnostics"
        elif isinstance(key, ShiftKey):
            text = f"{key.model} / {key.kind} {key.name} {key.severity}"
        else:
            text = f"{key.model} / {key.attack} / eps={key.eps:g}"
        if self.shards > 1:
            text += f" / rows {self.start}:{self.stop}"
        return text


def plan_tasks(config: Config, pending: list[Work], n_examples: int) -> list[Task]:
    """The tasks of the pending work, in its order (grouped by model).

    An attack job is cut into shards of [executor] shard_size rows when that is set and
    smaller than the split; diagnostics and shift jobs compare the whole split, and run as
    one task each.
    """
    size = config.executor.shard_size
    tasks: list[Task] = []
    for item in pending:
        if isinstance(item, JobKey) and size is not None and size < n_examples:
            starts = range(0, n_examples, size)
            tasks += [Task(item, s, min(s + size, n_examples), len(starts)) for s in starts]
        else:
            tasks.append(Task(item))
    return tasks


@dataclass(frozen=True)
class RunData:
    """The evaluated images (N, C, H, W) and labels (N,), and the [shift] OOD sets."""

    x: Tensor
    y: Tensor
    ood_sets: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Resources:
    """What every task of a run shares: shipped once by the executor, not once per task.

    Attributes:
        token: this run's id; a process keeps one `Workbench` (its built model, its clean
            predictions) per token and reuses it across the run's tasks.
        config, options: the run's config and options.
        device: where the tasks compute ("cpu", "cuda": on a Ray worker, its GPU).
        fingerprint: the run's data fingerprint (keys the cached zoo models).
        data: the evaluated set and the OOD sets (`RunData`).
        user_models: model name -> the user's built model (factory + checkpoint).
    """

    token: str
    config: Config
    device: str
    options: RunOptions
    fingerprint: str
    data: Shipped[RunData]
    user_models: Mapping[str, Shipped[nn.Module]] = field(default_factory=dict)


_BENCH: dict[str, Workbench] = {}  # this process's bench, keyed by the run's token


def _workbench(resources: Resources) -> Workbench:
    """This process's bench for the run (built by its first task here)."""
    if resources.token not in _BENCH:
        _BENCH.clear()
        data = resources.data.get()
        _BENCH[resources.token] = Workbench(
            resources.config,
            data.x,
            data.y,
            torch.device(resources.device),
            resources.options,
            fingerprint=resources.fingerprint,
            prebuilt=resources.user_models,
            ood_sets=data.ood_sets,
        )
    return _BENCH[resources.token]


def release_workbench() -> None:
    """Free this process's bench (its model and data) once a run is over."""
    _BENCH.clear()


def run_task(task: Task, resources: Resources) -> Outcome:
    """Compute one task's outcome: a pure function of the task and the run's resources.

    The model comes from the checkpoint cache (zoo models, trained by the driver before any
    task) or from `Resources.user_models`, and is kept for the next task of the same model
    in this process; that cache never changes a number (every computation is reseeded).
    """
    bench = _workbench(resources)
    key = task.key
    if isinstance(key, DiagnosticsKey):
        return bench.diagnose(key)
    if isinstance(key, ShiftKey):
        return _shift(bench, key)
    stop = len(bench.y) if task.stop is None else task.stop
    return bench.evaluate(key, shard=slice(task.start, stop))


def _environment(device: torch.device, options: RunOptions) -> dict[str, object]:
    import platform

    import numpy
    import torchvision

    env: dict[str, object] = {
        "robustbench_local": robustbench_local.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "amp": options.amp,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
