"""The seam between the runner and where jobs execute.

Jobs are independent: each needs only the config, the data and its own seeds. The runner
hands an executor the job list and a ``work`` function and stores whatever comes back,
in whatever order, one transaction per job. A distributed executor (processes, a
cluster queue) implements the same ``map`` and nothing in the protocol changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

__all__ = ["Executor", "SerialExecutor"]

J = TypeVar("J")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``work`` on every job and yields each result as soon as it is ready."""

    def map(self, work: Callable[[J], R], jobs: Sequence[J]) -> Iterator[R]: ...


class SerialExecutor:
    """Runs the jobs one after another in this process, in the given order."""

    def map(self, work: Callable[[J], R], jobs: Sequence[J]) -> Iterator[R]:
        for job in jobs:
            yield work(job)
