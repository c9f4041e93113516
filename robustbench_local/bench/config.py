"""Benchmark configs (TOML): parsing and complete validation before any work starts.

A config names a dataset, models, attacks and an epsilon sweep (see README for the
format; ``configs/default.toml`` is the embedded default). Every mistake, from an
unknown key to a missing checkpoint, raises `ConfigError` naming the file, the section
and the key, and suggesting the closest valid name where there is one. What needs the data or
a built model (the split's size, a user model's outputs) is checked next, by
`runner.prepare_run`, still before any run folder, store or training, with the same format
(`config_error`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from robustbench_local.bench.attack_registry import ATTACKS
from robustbench_local.registry import UnknownNameError
from robustbench_local.shifts import CORRUPTIONS, MAX_SEVERITY, OOD_SOURCES
from robustbench_local.zoo.datasets import DATASETS, dataset_info
from robustbench_local.zoo.factory import resolve_factory
from robustbench_local.zoo.models import MODELS, model_info

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "AttackSpec",
    "Config",
    "ConfigError",
    "ExecutorSettings",
    "ExplainSettings",
    "ModelSpec",
    "RunSettings",
    "Sweep",
    "config_error",
    "default_config",
    "load_config",
    "model_section",
    "parse_config",
]

DEFAULT_SOURCE = "<embedded default>"
NORMS = ("linf", "l2")


class ConfigError(ValueError):
    """A config that cannot run; the message names the file, the section and the key."""


def config_error(source: str, where: str, message: str, key: str | None = None) -> ConfigError:
    """The one format of a config mistake: ``<file>: <section>.<key>: <message>``.

    Args:
        source: the config file (or `DEFAULT_SOURCE`).
        where: the section, e.g. ``[run]`` or `model_section` (name).
        message: what is wrong and what to do.
        key: the key at fault, if one is.
    """
    place = f"{where}.{key}" if key else where
    return ConfigError(f"{source}: {place}: {message}")


def model_section(name: str) -> str:
    """How messages name a [[models]] entry: by its name, as the user wrote it."""
    return f"[[models]] {name!r}"


@dataclass(frozen=True)
class RunSettings:
    """The [run] table: what data, how much of it, and the seed of everything random."""

    name: str
    dataset: str
    n_examples: int | None = None
    batch_size: int = 256
    seed: int = 0
    split: str = "test"
    data_root: str | None = None
    download: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """One [[models]] entry: a zoo architecture and training recipe, or a user's model.

    ``ensemble`` > 1 builds a deep ensemble of members trained with seeds seed .. seed+n-1;
    ``mc_samples`` wraps the model in MC dropout with that many samples per prediction;
    attacks on it average ``attack_samples`` dropout masks per gradient (EOT; default
    ``min(mc_samples, 8)``), which costs a fraction of a full prediction per step.
    """

    name: str
    zoo: str | None = None
    recipe: str = "standard"
    train: Mapping[str, Any] = field(default_factory=dict)
    factory: str | None = None
    factory_kwargs: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    ensemble: int = 1
    mc_samples: int | None = None
    attack_samples: int | None = None
    seed: int | None = None

    @property
    def stochastic(self) -> bool:
        """Whether predictions are random (MC dropout): attacks then use EOT."""
        return self.mc_samples is not None

    @property
    def attack_mc_samples(self) -> int | None:
        """Dropout masks per forward pass while attacking (None for a deterministic model)."""
        if self.mc_samples is None:
            return None
        return self.attack_samples if self.attack_samples is not None else min(self.mc_samples, 8)


@dataclass(frozen=True)
class AttackSpec:
    """One [[attacks]] entry: a registered attack and the parameters it overrides."""

    label: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sweep:
    """The [sweep] table: the epsilons and the norm every attack runs at."""

    eps: tuple[float, ...]
    norm: str = "linf"


@dataclass(frozen=True)
class ShiftSettings:
    """The [shift] table: natural distribution shift and out-of-distribution inputs.

    Attributes:
        corruptions: corruption names (``rbl list corruptions``), "all" resolved to every
            one in registry order; each runs at every severity.
        severities: severities in 1..5.
        ood: out-of-distribution sources: a built-in one (``rbl list ood``) or another
            registered dataset whose test split is on disk under [run].data_root.
    """

    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    ood: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExplainSettings:
    """The [explain] table: attribution maps and concept directions per attack job
    (bench/explain_jobs.py).

    Attributes:
        enabled: false turns every explanation off (no metrics, no cost).
        n_images: evaluated images whose maps and features each job compares (all of them
            when the run evaluates fewer).
        k: concept directions per model (fewer when the features span fewer).
        method: the attribution method (`robustbench_local.explain.Method`).
    """

    enabled: bool = True
    n_images: int = 64
    k: int = 8
    method: str = "saliency"


@dataclass(frozen=True)
class ExecutorSettings:
    """The [executor] table: how tasks are cut and placed, never what they compute.

    None of it is part of the config's digest (`Config.to_dict`): a run resumes under
    other values, and the numbers do not depend on them (docs/architecture.md).

    Attributes:
        cpus_per_task, gpus_per_task: what the Ray executor reserves for each task (a
            fraction of a GPU lets tasks share one); the local executor ignores them.
        max_retries: how many times a task that raises is tried again before it is stored
            as failed (and, on Ray, how often a task whose worker died is resubmitted).
        shard_size: evaluated examples per attack task, a multiple of [run] batch_size;
            None: the whole split per task. Shards align to batches, whose seeds depend on
            their global index, so the shard size does not change the numbers.
    """

    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    max_retries: int = 2
    shard_size: int | None = None


@dataclass(frozen=True)
class Config:
    """A complete, validated benchmark config."""

    run: RunSettings
    models: tuple[ModelSpec, ...]
    attacks: tuple[AttackSpec, ...]
    sweep: Sweep
    shift: ShiftSettings | None = None
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    source: str = DEFAULT_SOURCE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything that defines the run (the source and the
        [executor] table excluded: they say where and how, not what)."""
        data = asdict(self)
        data.pop("source")
        data.pop("executor")
        return json.loads(json.dumps(data, default=dict))

    def digest(self) -> str:
        """A stable hash of `to_dict`: two configs with equal digests run the same jobs."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _Table:
    """One TOML table being read: hands out keys with type checks, then rejects the rest."""

    def __init__(self, data: object, where: str, source: str) -> None:
        self.where, self.source = where, source
        if not isinstance(data, dict):
            self.fail(f"must be a table; got {type(data).__name__} {data!r}")
        self.data: dict[str, Any] = dict(data)
        self.used: set[str] = set()

    def fail(self, message: str, key: str | None = None) -> None:
        raise config_error(self.source, self.where, message, key)

    def take(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """The value of key, checked against kind; ``default`` when absent (else required)."""
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail("is required", key)
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a config that says `steps = true` is a mistake.
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"must be {_kind_name(kinds)}; got {value!r}", key)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            self.fail(f"must be {_kind_name(kinds)}; got {type(value).__name__} {value!r}", key)
        return value

    def rest(self) -> dict[str, Any]:
        """The keys not yet taken (for entries whose keys are open, like attack params)."""
        return {k: v for k, v in self.data.items() if k not in self.used}

    def finish(self, allowed_extra: tuple[str, ...] = ()) -> None:
        unknown = [k for k in self.data if k not in self.used and k not in allowed_extra]
        if unknown:
            valid = sorted(self.used | set(allowed_extra))
            self.fail(_unknown_message("key", unknown[0], valid), unknown[0])


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _unknown_message(what: str, value: object, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(value), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {value!r}{hint}; valid: {', '.join(map(repr, valid))}"


def _registered(table: _Table, key: str, value: str, registry_names: list[str]) -> str:
    if value not in registry_names:
        table.fail(_unknown_message("name", value, registry_names), key)
    return value


def _positive(table: _Table, key: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        table.fail(f"must be an integer >= 1; got {value}", key)
    return value


def _parse_run(data: object, source: str, base: Path | None) -> RunSettings:
    table = _Table(data, "[run]", source)
    settings = RunSettings(
        name=table.take("name", str, "run"),
        dataset=_registered(table, "dataset", table.take("dataset", str), DATASETS.names()),
        n_examples=_positive(table, "n_examples", table.take("n_examples", int, None)),
        batch_size=_positive(table, "batch_size", table.take("batch_size", int, 256)),
        seed=table.take("seed", int, 0),
        split=table.take("split", str, "test"),
        data_root=table.take("data_root", str, None),
        download=table.take("download", bool, False),
    )
    table.finish()
    if settings.seed < 0:
        table.fail(f"must be an integer >= 0; got {settings.seed}", "seed")
    if settings.split not in ("train", "val", "test"):
        table.fail(_unknown_message("split", settings.split, ["test", "train", "val"]), "split")
    if not settings.name or any(c in settings.name for c in "/\\"):
        table.fail(f"must be a non-empty name without slashes; got {settings.name!r}", "name")
    if settings.data_root is not None:
        root = _resolve(base, settings.data_root)
        if not root.is_dir() and not settings.download:
            table.fail(
                f"folder {str(root)!r} does not exist (set download = true or pass "
                f"--download to fetch the dataset, or point data_root at the folder that "
                f"holds it)",
                "data_root",
            )
        settings = RunSettings(**{**asdict(settings), "data_root": str(root)})
    elif settings.dataset not in ("digits",):
        table.fail(
            f"dataset {settings.dataset!r} is read from disk: set data_root to its "
            f"folder or pass --data-root (and download = true or --download to fetch it)",
            "data_root",
        )
    return settings


def _resolve(base: Path | None, path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() or base is None else (base / candidate)


def _parse_model(
    data: object, index: int, source: str, base: Path | None, dataset: str
) -> ModelSpec:
    table = _Table(data, f"[[models]] #{index + 1}", source)
    name = table.take("name", str)
    table.where = model_section(name)
    zoo = table.take("zoo", str, None)
    factory = table.take("factory", str, None)
    checkpoint = table.take("checkpoint", str, None)
    if (zoo is None) == (factory is None):
        table.fail(
            "needs exactly one of `zoo` (a zoo architecture to train) or `factory` "
            '("package.module:callable" for your own model)'
        )
    if zoo is not None:
        _registered(table, "zoo", zoo, MODELS.names())
        _check_input_shape(table, zoo, dataset)
    if factory is not None and checkpoint is None:
        table.fail(
            "a `factory` model needs a `checkpoint` (.safetensors or a .pt state "
            "dict) with its weights",
            "checkpoint",
        )
    if checkpoint is not None:
        path = _resolve(base, checkpoint)
        if not path.is_file():
            table.fail(f"file {str(path)!r} does not exist", "checkpoint")
        checkpoint = str(path)
    if factory is not None:
        # Import it now: a missing module or attribute in the last model must not surface
        # after the first model was trained.
        try:
            resolve_factory(factory)
        except (ValueError, TypeError) as err:
            table.fail(str(err), "factory")
    spec = ModelSpec(
        name=name,
        zoo=zoo,
        recipe=table.take("recipe", str, "standard"),
        train=table.take("train", dict, {}),
        factory=factory,
        factory_kwargs=table.take("factory_kwargs", dict, {}),
        checkpoint=checkpoint,
        ensemble=_positive(table, "ensemble", table.take("ensemble", int, 1)) or 1,
        mc_samples=_positive(table, "mc_samples", table.take("mc_samples", int, None)),
        attack_samples=_positive(table, "attack_samples", table.take("attack_samples", int, None)),
        seed=table.take("seed", int, None),
    )
    table.finish()
    if spec.ensemble > 1 and spec.mc_samples is not None:
        table.fail("choose `ensemble` or `mc_samples`, not both")
    if spec.attack_samples is not None and spec.mc_samples is None:
        table.fail("`attack_samples` applies to MC dropout: set `mc_samples` too", "attack_samples")
    if spec.factory is not None and spec.ensemble > 1:
        table.fail(
            "`ensemble` trains zoo members; for your own ensemble, return a "
            "DeepEnsemble from the factory",
            "ensemble",
        )
    _check_recipe(table, spec)
    return spec


def _check_input_shape(table: _Table, zoo: str, dataset: str) -> None:
    """A zoo architecture must take the dataset's images (the registries know both shapes)."""
    takes, has = model_info(zoo).input_shape, dataset_info(dataset).input_shape
    if takes != has:
        fitting = [name for name in MODELS.names() if model_info(name).input_shape == has]
        table.fail(
            f"zoo model {zoo!r} takes inputs of shape {takes}, but dataset {dataset!r} has "
            f"images of shape {has}; zoo models for it: "
            f"{', '.join(fitting) or 'none (bring your own with `factory`)'}",
            "zoo",
        )


def _check_recipe(table: _Table, spec: ModelSpec) -> None:
    """The recipe and its hyper-parameter overrides must be known to the trainer."""
    if spec.zoo is None:
        return
    from robustbench_local.zoo import training  # the trainer pulls in torch data utilities

    if spec.recipe not in training.RECIPES:
        table.fail(_unknown_message("recipe", spec.recipe, training.RECIPES.names()), "recipe")
    try:
        training.validate_overrides(spec.recipe, dict(spec.train))
    except (ValueError, TypeError) as err:
        table.fail(str(err), "train")


#: The row label of the worst case over attacks in tables: no attack may take it.
RESERVED_LABEL = "worst"


def _parse_attack(data: object, index: int, source: str, norm: str) -> AttackSpec:
    table = _Table(data, f"[[attacks]] #{index + 1}", source)
    name = table.take("name", str)
    try:
        entry = ATTACKS.get(name)
    except UnknownNameError as err:
        table.fail(str(err), "name")
    label = table.take("label", str, name)
    if label == RESERVED_LABEL:
        table.fail(
            f"{RESERVED_LABEL!r} is reserved for the worst case over all attacks; choose "
            f"another label",
            "label",
        )
    table.where = f"[[attacks]] {label!r}"
    params = table.rest()
    for key, value in params.items():
        if key not in entry.params:
            table.fail(
                _unknown_message(
                    f"{name} parameter", key, [*sorted(entry.params), "label", "name"]
                ),
                key,
            )
        kind = entry.types[key]
        if kind is tuple:  # a list of names (pgd-eot's transforms), checked by the attack below
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                table.fail(f"must be a list of strings; got {type(value).__name__} {value!r}", key)
            continue
        expected: tuple[type, ...] = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, expected):
            table.fail(f"must be {_kind_name((kind,))}; got {type(value).__name__} {value!r}", key)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (not math.isfinite(value) or value < 0)
        ):
            table.fail(f"must be a finite number >= 0; got {value!r}", key)
    # The attack's own rules (attacks.pgd.validate_options, ...), so a value the attack
    # would reject (steps = 0, loss = "foo") stops the run before any model is trained.
    problem = entry.problem(params)
    if problem is not None:
        table.fail(problem[1], problem[0])
    if norm not in entry.norms:
        table.fail(
            f"attack {name!r} supports norm {' or '.join(sorted(entry.norms))}, but "
            f"[sweep] norm is {norm!r}",
            "name",
        )
    return AttackSpec(label=label, name=name, params=params)


def _parse_sweep(data: object, source: str) -> Sweep:
    table = _Table(data, "[sweep]", source)
    eps = table.take("eps", list)
    norm = table.take("norm", str, "linf")
    table.finish()
    if not eps:
        table.fail("must list at least one epsilon", "eps")
    for value in eps:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            table.fail(f"must hold numbers; got {value!r}", "eps")
        if not math.isfinite(value) or value < 0:
            table.fail(f"must hold finite numbers >= 0; got {value!r}", "eps")
    if len(set(eps)) != len(eps):
        table.fail(f"must not repeat a value; got {eps}", "eps")
    if norm not in NORMS:
        table.fail(_unknown_message("norm", norm, list(NORMS)), "norm")
    return Sweep(eps=tuple(float(v) for v in eps), norm=norm)


def _parse_explain(data: object, source: str) -> ExplainSettings:
    """The [explain] table (every key optional; an absent table keeps the defaults)."""
    # Imported here: the attribution methods pull in captum, which `rbl list` never needs.
    from robustbench_local.explain import Method

    table = _Table(data, "[explain]", source)
    defaults = ExplainSettings()
    settings = ExplainSettings(
        enabled=table.take("enabled", bool, defaults.enabled),
        n_images=_positive(table, "n_images", table.take("n_images", int, defaults.n_images))
        or defaults.n_images,
        k=_positive(table, "k", table.take("k", int, defaults.k)) or defaults.k,
        method=table.take("method", str, defaults.method),
    )
    table.finish()
    methods = [m.value for m in Method]
    if settings.method not in methods:
        table.fail(_unknown_message("method", settings.method, methods), "method")
    return settings


def _parse_executor(data: object, source: str, batch_size: int) -> ExecutorSettings:
    """The [executor] table (every key optional; an absent table keeps the defaults)."""
    table = _Table(data, "[executor]", source)
    defaults = ExecutorSettings()
    settings = ExecutorSettings(
        cpus_per_task=table.take("cpus_per_task", float, defaults.cpus_per_task),
        gpus_per_task=table.take("gpus_per_task", float, defaults.gpus_per_task),
        max_retries=table.take("max_retries", int, defaults.max_retries),
        shard_size=_positive(table, "shard_size", table.take("shard_size", int, None)),
    )
    table.finish()
    for key in ("cpus_per_task", "gpus_per_task"):
        value = getattr(settings, key)
        if not math.isfinite(value) or value < 0:
            table.fail(f"must be a finite number >= 0; got {value!r}", key)
    if settings.cpus_per_task == 0 and settings.gpus_per_task == 0:
        table.fail("a task needs some CPU or GPU: set cpus_per_task or gpus_per_task > 0")
    if settings.gpus_per_task > 1 and settings.gpus_per_task != int(settings.gpus_per_task):
        table.fail(
            f"must be a fraction <= 1 or a whole number; got {settings.gpus_per_task!r}",
            "gpus_per_task",
        )
    if settings.max_retries < 0:
        table.fail(f"must be an integer >= 0; got {settings.max_retries}", "max_retries")
    if settings.shard_size is not None and settings.shard_size % batch_size:
        table.fail(
            f"must be a multiple of [run] batch_size ({batch_size}), so that shards hold "
            f"whole batches (whose seeds keep the numbers); got {settings.shard_size}",
            "shard_size",
        )
    return settings


def _names(table: _Table, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        table.fail(f"must be a list of names; got {value!r}", key)
    if len(set(value)) != len(value):
        table.fail(f"must not repeat a name; got {value}", key)
    return list(value)


def _parse_shift(data: object, source: str, dataset: str) -> ShiftSettings:
    """The [shift] table; names are checked against the corruption, OOD and dataset
    registries here, so a typo stops the run before any work."""
    table = _Table(data, "[shift]", source)
    corruptions = table.take("corruptions", (list, str), [])
    severities = table.take("severities", list, [1, 2, 3, 4, 5])
    ood = _names(table, "ood", table.take("ood", list, []))
    table.finish()
    known = CORRUPTIONS.names()
    gray = dataset_info(dataset).input_shape[0] == 1
    if isinstance(corruptions, str):
        if corruptions == "all" and gray:  # saturate has no meaning without colour
            known = [name for name in known if not CORRUPTIONS.get(name).colour_only]
        if corruptions != "all":
            table.fail(
                f'must be a list of corruption names or "all"; got {corruptions!r}', "corruptions"
            )
        corruptions = known
    for name in _names(table, "corruptions", corruptions):
        _registered(table, "corruptions", name, known)
        if gray and CORRUPTIONS.get(name).colour_only:
            table.fail(f"{name!r} needs colour images; dataset {dataset!r} is gray", "corruptions")
    for value in severities:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEVERITY:
            table.fail(f"must hold integers 1..{MAX_SEVERITY}; got {value!r}", "severities")
    if len(set(severities)) != len(severities):
        table.fail(f"must not repeat a value; got {severities}", "severities")
    if corruptions and not severities:
        table.fail("must list at least one severity", "severities")
    sources = OOD_SOURCES.names() + [d for d in DATASETS.names() if d != dataset]
    for name in ood:
        if name == dataset:
            table.fail(f"{name!r} is the run's own dataset, not out-of-distribution", "ood")
        _registered(table, "ood", name, sources)
    if not corruptions and not ood:
        table.fail("needs `corruptions` or `ood` (or leave the [shift] table out)")
    return ShiftSettings(tuple(corruptions), tuple(sorted(severities)), tuple(ood))


def _unique(labels: list[str], what: str, source: str, hint: str = "") -> None:
    seen = set()
    for label in labels:
        if label in seen:
            raise ConfigError(
                f"{source}: two {what} share the name {label!r}; names must be unique{hint}"
            )
        seen.add(label)


def parse_config(
    data: Mapping[str, Any], *, source: str = DEFAULT_SOURCE, base: Path | None = None
) -> Config:
    """Validate a parsed TOML document and build the `Config`.

    Args:
        data: the TOML document as a dict.
        source: where it came from, for error messages.
        base: folder that relative paths (checkpoints, data_root) are resolved against.

    Returns:
        the validated `Config`.
    """
    top = _Table(data, "top level", source)
    run = _parse_run(top.take("run", dict), source, base)
    models_data = top.take("models", list)
    attacks_data = top.take("attacks", list)
    sweep = _parse_sweep(top.take("sweep", dict), source)
    shift_data = top.take("shift", dict, None)
    shift = None if shift_data is None else _parse_shift(shift_data, source, run.dataset)
    explain = _parse_explain(top.take("explain", dict, {}), source)
    executor = _parse_executor(top.take("executor", dict, {}), source, run.batch_size)
    top.finish()
    if not models_data:
        top.fail("needs at least one [[models]] entry", "models")
    if not attacks_data:
        top.fail("needs at least one [[attacks]] entry", "attacks")
    models = tuple(_parse_model(m, i, source, base, run.dataset) for i, m in enumerate(models_data))
    attacks = tuple(_parse_attack(a, i, source, sweep.norm) for i, a in enumerate(attacks_data))
    _unique([m.name for m in models], "[[models]]", source)
    _unique([a.label for a in attacks], "[[attacks]]", source, " (set `label` to tell them apart)")
    return Config(
        run=run,
        models=models,
        attacks=attacks,
        sweep=sweep,
        shift=shift,
        explain=explain,
        executor=executor,
        source=source,
    )


def _with_run_overrides(
    data: dict[str, Any], source: str, run_overrides: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """The document with [run] keys replaced (command-line options), and a source that says so.

    The overrides go through the same validation as the file's own keys.
    """
    if not run_overrides:
        return data, source
    run = data.get("run")
    if not isinstance(run, dict):
        return data, source  # parse_config reports the missing or malformed [run]
    flags = ", ".join(f"{key} = {value!r}" for key, value in run_overrides.items())
    return {**data, "run": {**run, **run_overrides}}, f"{source} (with {flags})"


def load_config(path: str | Path, run_overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a TOML config file (relative paths resolve against its folder).

    Args:
        path: the TOML file.
        run_overrides: [run] keys to set over the file's (``rbl run --data-root``,
            ``--download``); validated like the file's own.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    data, source = _with_run_overrides(data, str(path), run_overrides)
    return parse_config(data, source=source, base=path.parent.resolve())


def default_config(run_overrides: Mapping[str, Any] | None = None) -> Config:
    """The embedded default benchmark (``configs/default.toml``), with optional [run] keys
    set over it (see `load_config`)."""
    text = (
        resources.files("robustbench_local")
        .joinpath("configs/default.toml")
        .read_text(encoding="utf-8")
    )
    data, source = _with_run_overrides(tomllib.loads(text), DEFAULT_SOURCE, run_overrides)
    return parse_config(data, source=source)
