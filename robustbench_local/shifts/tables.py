"""The published severity tables a corruption's parameters come from, and their pixel scale.

Two tables are published for small images:

- ``cifar10-c``: Hendrycks and Dietterich, "Benchmarking Neural Network Robustness to
  Common Corruptions and Perturbations" (ICLR 2019), the CIFAR-10-C parameters
  (``make_cifar_c.py`` in github.com/hendrycks/robustness), for 32x32 colour images.
- ``mnist-c``: Mu and Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision"
  (ICML 2019 workshop), the parameters of ``corruptions.py`` in
  github.com/google-research/mnist-c, for 28x28 gray images. MNIST-C's severities are much
  stronger: noise that CIFAR-10-C calls severe barely changes a digit.

By default a gray input (C=1) gets the MNIST-C table and a colour input (C=3) the
CIFAR-10-C one. A parameter given in pixels (a blur radius, a shift) is scaled by the
image's size over the table's (32 or 28), so a severity means the same relative change on
an 8x8 digit as on the table's images. A corruption that only one table defines (MNIST-C's
geometric ones) uses that table for every input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TypeVar

from torch import Tensor

from robustbench_local.registry import parse_option

__all__ = ["REFERENCE_SIZE", "Table", "default_table", "lookup", "pixel_scale", "resolve_table"]

T = TypeVar("T")


class Table(str, Enum):
    """Which published severity table a corruption follows."""

    CIFAR10_C = "cifar10-c"
    MNIST_C = "mnist-c"


# The image side each table's pixel parameters were written for.
REFERENCE_SIZE: dict[Table, int] = {Table.CIFAR10_C: 32, Table.MNIST_C: 28}


def default_table(channels: int) -> Table:
    """MNIST-C for gray inputs (C=1), CIFAR-10-C for colour ones."""
    return Table.MNIST_C if channels == 1 else Table.CIFAR10_C


def resolve_table(table: Table | str | None, channels: int) -> Table:
    """The table to use: the given one (a `Table` or its value), else the default by channels.

    Raises:
        UnknownNameError (a ValueError): table names no table; the message lists them.
    """
    if table is None:
        return default_table(channels)
    return parse_option(Table, table, "table")


def lookup(tables: Mapping[Table, Sequence[T]], table: Table, severity: int) -> tuple[T, Table]:
    """A corruption's parameter at severity 1..5 from the chosen table.

    Args:
        tables: the corruption's published values, five per table it appears in.
        table: the table asked for; when the corruption is not in it, the one table it is in.
        severity: 1..5.

    Returns:
        (the parameter, the table it came from), the latter for `pixel_scale`.
    """
    source = table if table in tables else next(iter(tables))
    return tables[source][severity - 1], source


def pixel_scale(x: Tensor, source: Table) -> float:
    """How many of x's pixels one pixel of the source table's images spans: min(H, W) / side."""
    return min(x.shape[-2], x.shape[-1]) / REFERENCE_SIZE[source]
