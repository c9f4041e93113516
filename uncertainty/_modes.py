"""Temporarily switching modules to eval mode and putting every flag back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(*roots: nn.Module) -> Iterator[None]:
    """Put `roots` and all their submodules in eval mode; restore each module's own flag on exit.

    Restoring per module (not with `root.train(flag)`) matters: a caller may have set a mixed
    state, e.g. an attack that set `.eval()` or a recipe that froze BatchNorm only.

    Args:
        roots: the modules to switch.
    """
    saved = [(module, module.training) for root in roots for module in root.modules()]
    try:
        for root in roots:
            root.eval()
        yield
    finally:
        for module, flag in saved:
            module.training = flag
