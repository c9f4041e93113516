"""Checks that need a built model or the file system, run before a benchmark does any work.

The config check (`config.py`) sees only the TOML. What it cannot see is found here, before
any run folder, store or trained model exists: a user's model is built once from its
factory and checkpoint and run on a few real examples, so a factory that raises, returns
something else than a module, or computes outputs of the wrong kind is reported in one line
that names the model and its config key (not as a traceback from deep inside an attack,
after hours of training); and the folders a run writes to must be writable.

`runner.prepare_run` drives these checks and hands what they built to the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from robustbench_local.bench.config import ConfigError, ModelSpec, config_error, model_section
from robustbench_local.zoo.checkpoints import load_checkpoint
from robustbench_local.zoo.factory import check_factory_kwargs, resolve_factory

__all__ = [
    "PROBE_EXAMPLES",
    "NotWritableError",
    "build_checked_user_model",
    "check_logits",
    "check_writable_folder",
]

PROBE_EXAMPLES = 4  # examples in the one forward pass that checks a user's model
# How far the rows of a probability-like output may sum from 1 (float32 softmax rounding).
_PROBABILITY_ATOL = 1e-3


class NotWritableError(ValueError):
    """A folder the run must write to cannot be created or written; names it and the fix."""


def check_writable_folder(path: Path, what: str, fix: str, *, create: bool) -> None:
    """Make sure files can be written in the folder path (before any work depends on it).

    Args:
        path: the folder.
        what: what it is, for the message ("output folder", "checkpoint cache").
        fix: what the user can do about it, for the message.
        create: create the folder when missing; else (a run folder, created later under the
            run's lock) its nearest existing parent must be a writable folder.

    Raises:
        NotWritableError: naming the folder, the reason and the fix.
    """

    def refuse(reason: str) -> NotWritableError:
        return NotWritableError(f"{what} {str(path)!r} is not writable ({reason}): {fix}")

    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise refuse(err.strerror or str(err)) from err
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise refuse(f"{str(existing)!r} is a file, not a folder")
    try:
        # Writing a file is the only reliable test: permissions, read-only mounts, quotas
        # and ACLs all answer it, where os.access answers for permissions alone.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise refuse(f"{err.strerror or err} in {str(existing)!r}") from err


def _first_line(err: BaseException) -> str:
    """An exception as "Type: first line" (PyTorch's messages run over many lines)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def check_logits(output: object, batch_size: int, num_classes: int, classes: str) -> str | None:
    """Check one forward pass's output against what every attack and metric expects.

    Args:
        output: what the model returned for a batch of batch_size inputs.
        batch_size: B.
        num_classes: K, the dataset's number of classes.
        classes: where K comes from, for messages (e.g. "dataset 'digits' has 10 classes").

    Returns:
        a warning for outputs that are valid but look like probabilities rather than
        logits; None when all is well.

    Raises:
        ValueError: not a floating-point Tensor of shape (B, K) with finite values; the
            message says what was returned and what to change.
    """
    expected = f"({batch_size}, {num_classes})"
    need = f"rbl needs one Tensor of logits of shape (B, K) = {expected}"
    if isinstance(output, Mapping):
        keys = list(output)[:6]
        raise ValueError(
            f"forward returned a {type(output).__name__} with keys {keys}; {need}: wrap the "
            f"model so that forward returns only the logits (e.g. out['logits'])"
        )
    if isinstance(output, (tuple, list)):
        raise ValueError(
            f"forward returned a {type(output).__name__} of {len(output)} items; {need}: wrap "
            f"the model so that forward returns only the logits (e.g. out[0])"
        )
    if not isinstance(output, Tensor):
        raise ValueError(f"forward returned a {type(output).__name__}; {need}")
    shape = tuple(output.shape)
    if not output.is_floating_point():
        raise ValueError(
            f"forward returned a {output.dtype} tensor of shape {shape}; {need} "
            f"(class scores, not class indices)"
        )
    if shape == (batch_size,):
        raise ValueError(
            f"forward returned shape {shape} for a batch of {batch_size}; {need}: one row of "
            f"{num_classes} class scores per input, not one number"
        )
    if output.dim() > 2 and shape[0] == batch_size and all(d == 1 for d in shape[2:]):
        raise ValueError(
            f"forward returned shape {shape} for a batch of {batch_size}; {need}: drop the "
            f"trailing dimensions of size 1 (e.g. out.flatten(1))"
        )
    if output.dim() != 2 or shape[0] != batch_size:
        raise ValueError(f"forward returned shape {shape} for a batch of {batch_size}; {need}")
    if shape[1] != num_classes:
        raise ValueError(
            f"forward returned {shape[1]} scores per input, but {classes}; build the model "
            f"with {num_classes} outputs"
        )
    if not bool(torch.isfinite(output).all()):
        raise ValueError(
            f"forward returned NaN or infinite values on {batch_size} inputs; check the "
            f"checkpoint and the model's normalisation"
        )
    rows = output.double()
    if bool((rows >= 0).all()) and torch.allclose(
        rows.sum(dim=1), torch.ones(batch_size, dtype=torch.float64), atol=_PROBABILITY_ATOL
    ):
        return (
            "forward returns rows that look like probabilities (non-negative, summing to 1), "
            "but rbl expects logits: remove the final softmax, or cross-entropy attacks, "
            "confidences and uncertainties are computed on the wrong scale"
        )
    return None


def build_checked_user_model(
    spec: ModelSpec,
    source: str,
    x: Tensor,
    num_classes: int,
    classes: str,
    device: torch.device,
) -> tuple[nn.Module, str | None]:
    """Build a user's model (factory, then checkpoint) and check one forward pass.

    Args:
        spec: a [[models]] entry with a ``factory``.
        source: the config file, for messages.
        x: a few evaluation inputs (B, C, H, W) in [0, 1] (on any device).
        num_classes: K, the dataset's number of classes.
        classes: where K comes from, for messages.
        device: the run's device; the check runs there.

    Returns:
        the model in eval mode with its weights loaded, moved back to the CPU (the run
        places it when its turn comes, so that models waiting for their turn hold no device
        memory); and a warning naming the model, or None.

    Raises:
        ConfigError: one line naming the file, the model and its key (``factory``,
            ``factory_kwargs`` or ``checkpoint``), what went wrong and what to do.
    """
    if spec.factory is None:
        raise ValueError(f"model {spec.name!r} is a zoo model; it has no factory to check")
    where = model_section(spec.name)

    def fail(message: str, key: str) -> ConfigError:
        return config_error(source, where, message, key)

    factory = resolve_factory(spec.factory)  # resolved when the config was read
    try:
        kwargs = check_factory_kwargs(spec.factory, factory, spec.factory_kwargs)
    except TypeError as err:
        raise fail(str(err), "factory_kwargs") from err
    try:
        model = factory(**kwargs)
    except Exception as err:  # the user's code: any failure is theirs to see in one line
        raise fail(f"calling {spec.factory!r} raised {_first_line(err)}", "factory") from err
    if not isinstance(model, nn.Module):
        raise fail(
            f"{spec.factory!r} returned a {type(model).__name__}; expected a torch.nn.Module",
            "factory",
        )
    try:
        load_checkpoint(model, spec.checkpoint)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        raise fail(
            f"could not load {spec.checkpoint!r} into the model {spec.factory!r} built: "
            f"{_first_line(err)}",
            "checkpoint",
        ) from err
    batch = x[:PROBE_EXAMPLES].to(device)
    try:
        model.to(device).eval()
        with torch.no_grad():
            output = model(batch)
    except Exception as err:  # the user's forward
        raise fail(
            f"forward on {len(batch)} inputs of shape {tuple(batch.shape)} (pixels in [0, 1]) "
            f"raised {_first_line(err)}",
            "factory",
        ) from err
    try:
        warning = check_logits(output, len(batch), num_classes, classes)
    except ValueError as err:
        raise fail(str(err), "factory") from err
    model.to("cpu")
    return model, (None if warning is None else f"{source}: {where}: {warning}")
