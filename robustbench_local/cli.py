"""The ``rbl`` command line: run benchmarks, rebuild reports, list registries, train models.

rbl run [CONFIG.toml] [--device auto|cpu|cuda] [--out DIR] [--amp] [--quiet] [--fresh]
        [--data-root DIR] [--download] [--executor local|ray] [--ray-address ADDRESS]
rbl report RUN
rbl leaderboard DIR
rbl list models|datasets|attacks|recipes|corruptions|ood|transforms
rbl train --zoo NAME --dataset NAME --recipe NAME [--seed N] [--set key=value ...]
          [--data-root DIR] [--download]
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import os
import sqlite3
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustbench_local.devices import DEVICE_CHOICES

if TYPE_CHECKING:
    from robustbench_local.results.records import Summary

__all__ = ["main"]

RUNS_DIR = Path("runs")


def _positive_path(value: str) -> Path:
    return Path(value).expanduser()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rbl",
        description="robustbench-local: adversarial robustness and uncertainty "
        "benchmarks for PyTorch models.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (also RBL_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run (or resume) a benchmark batch",
        description="Run a benchmark config; with no config, the embedded "
        "default (digits). Running the same command again resumes.",
    )
    run.add_argument(
        "config",
        nargs="?",
        type=_positive_path,
        help="a TOML config (default: the embedded digits benchmark)",
    )
    run.add_argument(
        "--device",
        default="auto",
        choices=DEVICE_CHOICES,
        help="where to compute (default: auto = cuda if available)",
    )
    run.add_argument(
        "--out",
        type=_positive_path,
        help="run folder (default: resume the latest runs/<name>-* of this "
        "config, else a new runs/<name>-<timestamp>)",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start anew instead of resuming: a new run folder, or with --out the same "
        "folder with its old results.sqlite moved aside (never deleted)",
    )
    run.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA only)")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary table")
    run.add_argument(
        "--cache-dir",
        type=_positive_path,
        help="checkpoint cache (default: $RBL_CACHE_DIR or ~/.cache/robustbench-local)",
    )
    run.add_argument(
        "--retrain", action="store_true", help="retrain the zoo models even when cached"
    )
    run.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="where tasks run: in this process (local, the default) or on Ray (needs "
        "robustbench-local[ray]); the numbers are the same",
    )
    run.add_argument(
        "--ray-address",
        help="with --executor ray: the cluster (auto, HOST:6379, ray://HOST:10001); default "
        "$RAY_ADDRESS, else a local Ray instance for this run",
    )
    _data_options(run)

    report = sub.add_parser("report", help="(re)build a run's report from its store")
    report.add_argument("run", type=_positive_path, help="a run folder")

    board = sub.add_parser("leaderboard", help="compare the runs under a folder")
    board.add_argument("folder", type=_positive_path, nargs="?", default=RUNS_DIR)

    listing = sub.add_parser(
        "list",
        help="list registered models, datasets, attacks, recipes, corruptions, OOD sources "
        "and the EOT attacks' transformations",
    )
    listing.add_argument(
        "what",
        choices=("models", "datasets", "attacks", "recipes", "corruptions", "ood", "transforms"),
    )

    train = sub.add_parser("train", help="train (or load from the cache) a zoo model")
    train.add_argument("--zoo", required=True, help="zoo architecture (rbl list models)")
    train.add_argument("--dataset", required=True, help="dataset (rbl list datasets)")
    train.add_argument("--recipe", default="standard", help="recipe (rbl list recipes)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe hyper-parameter",
    )
    train.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    train.add_argument("--cache-dir", type=_positive_path)
    train.add_argument("--retrain", action="store_true")
    _data_options(train)
    return parser


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        type=_positive_path,
        help="folder of the dataset's files (mnist, fashion-mnist, cifar10, svhn, "
        "imagefolder); for rbl run it replaces the config's data_root",
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="let torchvision download missing files into --data-root (needs network)",
    )


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """[run] keys the command line sets: an absolute data_root (relative to the working
    directory, not to the config's folder), and download."""
    overrides: dict[str, Any] = {}
    if args.data_root is not None:
        overrides["data_root"] = str(args.data_root.resolve())
    if args.download:
        overrides["download"] = True
    return overrides


def _run_folder(config: Any, args: argparse.Namespace) -> Path:
    """--out, else the newest runs/<name>-* of the same config, else a new timestamped one."""
    from robustbench_local.bench.runner import run_digest
    from robustbench_local.results.store import ResultsStore

    if args.out is not None:
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {str(args.out)!r} is a file; it must be a run folder")
        return args.out
    name = config.run.name
    if not args.fresh and RUNS_DIR.is_dir():
        for folder in sorted(RUNS_DIR.glob(f"{name}-*"), reverse=True):
            store_path = folder / "results.sqlite"
            if store_path.is_file():
                with ResultsStore(store_path, readonly=True) as store:
                    if store.get_meta("digest") == run_digest(config):
                        return folder
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RUNS_DIR / f"{name}-{stamp}"


def _print_table(summary: Summary) -> None:
    """Print the run's tables: the same headline numbers (chosen eps, strongest attack, ECE,
    AUROC) as report.html, from `reports.console_report`, so the two cannot disagree."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from reports import console_report

    report = console_report(summary)
    console = Console()
    for text in report.tables:
        table = Table(title=Text(text.title), title_justify="left")  # names are not markup
        for i, header in enumerate(text.headers):
            if i < text.text_columns:
                table.add_column(header, no_wrap=True)
            else:
                table.add_column(header, justify="right")
        for row in text.rows:
            table.add_row(*map(Text, row))
        console.print(table)
    if report.shift_comparison:
        console.print(f"adversarial vs natural shift: {report.shift_comparison}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    for warning in report.warnings:
        console.print(Text.assemble(("warning:", "bold yellow"), " ", warning))


def _move_store_aside(folder: Path, *, quiet: bool) -> None:
    """--fresh with --out: keep the old results under a dated name; the run starts empty."""
    store = folder / "results.sqlite"
    if not store.exists():
        return
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = folder / f"results-{stamp}.sqlite.old"
    store.rename(kept)
    if not quiet:
        print(f"--fresh: the previous results are kept in {kept}", file=sys.stderr)


def _cmd_run(args: argparse.Namespace) -> int:
    from reports import build_report
    from robustbench_local.bench.config import default_config, load_config
    from robustbench_local.bench.runner import RunOptions, prepare_run, run_benchmark
    from robustbench_local.results.run_lock import RunLock

    if args.ray_address is not None and args.executor != "ray":
        raise ValueError("--ray-address needs --executor ray")
    if args.executor == "ray":
        from robustbench_local.bench.executors_ray import check_ray

        check_ray()  # before any work: without Ray, one line saying what to install
    overrides = _run_overrides(args)
    config = (
        default_config(overrides) if args.config is None else load_config(args.config, overrides)
    )
    out = _run_folder(config, args)
    options = RunOptions(
        device=args.device,
        amp=args.amp,
        quiet=args.quiet,
        cache_dir=args.cache_dir,
        retrain=args.retrain,
    )
    # Every check that needs the data, a user's model or the folders, before the run folder
    # exists and before any model is trained.
    prepared = prepare_run(config, out, options)
    for note in prepared.warnings:
        print(f"rbl run: warning: {note}", file=sys.stderr)
    if not args.quiet:
        print(f"run folder: {out}", file=sys.stderr)
    with RunLock(out):
        if args.fresh and args.out is not None:
            _move_store_aside(out, quiet=args.quiet)
        executor = _executor(args, config)
        try:
            store = run_benchmark(config, out, options, executor=executor, prepared=prepared)
        finally:
            executor.close()
        store.close()
        summary = build_report(out)
    if not args.quiet:
        _print_table(summary)
        print(f"report: {out / 'report.html'}", file=sys.stderr)
    if summary.failed:
        print(
            f"rbl run: {len(summary.failed)} task(s) failed (summary.json 'failed'); run the "
            f"same command again to retry them",
            file=sys.stderr,
        )
        return 1
    return 0


def _executor(args: argparse.Namespace, config: Any) -> Any:
    """The executor --executor names, sized by the config's [executor] table."""
    if args.executor == "ray":
        from robustbench_local.bench.executors_ray import RayExecutor

        return RayExecutor(
            args.ray_address,
            cpus_per_task=config.executor.cpus_per_task,
            gpus_per_task=config.executor.gpus_per_task,
        )
    from robustbench_local.bench.executor import LocalExecutor

    return LocalExecutor()


def _cmd_report(args: argparse.Namespace) -> int:
    from reports import build_report

    if not (args.run / "results.sqlite").is_file():
        raise FileNotFoundError(f"{str(args.run)!r} is not a run folder: it has no results.sqlite")
    build_report(args.run)
    print(args.run / "report.html")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from reports import build_leaderboard

    print(build_leaderboard(args.folder))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from robustbench_local.zoo.models import MODELS as registry
    elif args.what == "datasets":
        from robustbench_local.zoo.datasets import DATASETS as registry
    elif args.what == "attacks":
        from robustbench_local.bench.attack_registry import ATTACKS as registry
    elif args.what == "corruptions":
        from robustbench_local.shifts import CORRUPTIONS as registry
    elif args.what == "ood":
        from robustbench_local.shifts import OOD_SOURCES as registry
    elif args.what == "transforms":
        from robustbench_local.shifts import TRANSFORMS as registry
    else:
        from robustbench_local.zoo.training import RECIPES as registry
    for entry in registry.items():
        description = entry.metadata.get("description") or getattr(entry.obj, "description", "")
        print(f"{entry.name:22s} {description}")
    return 0


def _parse_override(text: str) -> tuple[str, Any]:
    from robustbench_local.bench.config import tomllib

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--set must look like key=value; got {text!r}")
    try:  # TOML literals: 0.2, 10, true, "text"
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def _cmd_train(args: argparse.Namespace) -> int:
    from robustbench_local.devices import resolve_device
    from robustbench_local.zoo.training import default_spec, load_or_train

    overrides = dict(_parse_override(text) for text in args.overrides)
    spec = default_spec(
        args.zoo,
        args.dataset,
        args.recipe,
        seed=args.seed,
        data_root=args.data_root,  # an image folder's class folders give num_classes
        **overrides,
    )
    _, result, cached = load_or_train(
        spec,
        cache_dir=args.cache_dir,
        device=resolve_device(args.device),
        retrain=args.retrain,
        progress=True,
        data_root=args.data_root,
        download=args.download,
    )
    print(f"{'loaded from cache' if cached else 'trained'}: {result}")
    return 0


COMMANDS = {
    "run": _cmd_run,
    "report": _cmd_report,
    "leaderboard": _cmd_leaderboard,
    "list": _cmd_list,
    "train": _cmd_train,
}


_DISK_FULL = (
    "free some space (or point --out / --cache-dir elsewhere) and run again (a run resumes "
    "where it stopped)"
)


def _describe(err: BaseException) -> str:
    """What went wrong and where, for the known kinds of failure."""
    if isinstance(err, sqlite3.DatabaseError):
        if getattr(err, "sqlite_errorname", None) == "SQLITE_FULL":
            return f"the disk is full: a results store could not be written ({err}); {_DISK_FULL}"
        return (
            f"a results store could not be read or written ({err}): if results.sqlite is "
            f"corrupt, move it aside or run with --fresh"
        )
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        where = f" writing {str(err.filename)!r}" if err.filename is not None else ""
        return f"no space left on device{where}: {_DISK_FULL}"
    if isinstance(err, OSError) and err.filename is not None:
        where = repr(str(err.filename))
        return f"{err.strerror or err} ({where})"
    return str(err)


def _one_line(err: BaseException) -> str:
    """An expected failure as one line: what went wrong and where (a message of many lines,
    such as some of PyTorch's, is joined)."""
    lines = (line.strip() for line in _describe(err).splitlines())
    return " ".join(line for line in lines if line)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rbl``; returns the exit status.

    Expected failures (a bad config or argument, a missing or unreadable file, a full disk,
    a corrupt store, a busy run folder) end with one line and exit status 2; ``--debug`` or
    ``RBL_DEBUG=1`` adds the traceback.
    """
    from robustbench_local.results.run_lock import RunFolderBusy

    parser = _parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("RBL_DEBUG", "") not in ("", "0")
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, sqlite3.DatabaseError, RunFolderBusy) as err:
        # Configuration and input mistakes (ConfigError, StoreError, CacheError and the
        # registries' errors are ValueErrors) and the environment's failures: one clear line.
        if debug:
            traceback.print_exc()
        parser.exit(2, f"rbl {args.command}: error: {_one_line(err)}\n")
    except KeyboardInterrupt:
        parser.exit(130, "rbl: interrupted; finished jobs are stored, run again to resume\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
