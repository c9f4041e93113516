"""The seam between the runner (the planner and the only writer of the store) and where
tasks execute.

A task is a small picklable value and its outcome is computed by one pure function,
``run(task, resources)`` (`runner.run_task`), so an executor needs nothing but the task list,
that function and the run's resources. It yields every task's `Finished` as soon as it is
ready, in any order; the runner stores each one (one transaction per job) and never waits for
the whole plan, so a driver that is killed loses only the tasks not yet stored.

Large values the tasks share (the evaluated images, a user's model) are handed over with
``ship``: the local executor keeps them as they are (`Inline`), the Ray executor puts each one
in the object store once (`executors_ray.InStore`); a task asks for the value with ``get()``.

A task that raises is tried again, up to ``max_retries`` more times, and then reported as
failed (its error as one line, and how many times it ran): the other tasks go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "Executor",
    "Finished",
    "Inline",
    "LocalExecutor",
    "SerialExecutor",
    "Shipped",
    "error_line",
]

J = TypeVar("J")
R = TypeVar("R")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Shipped(Protocol[T_co]):
    """A value handed to the tasks by reference; ``get`` gives the value where a task runs."""

    def get(self) -> T_co: ...


@dataclass(frozen=True)
class Inline(Generic[T]):
    """A shipped value that is the value itself (the local executor: same process)."""

    value: T

    def get(self) -> T:
        return self.value


@dataclass
class Finished(Generic[J, R]):
    """What became of one task: its outcome, or the error of its last attempt.

    Attributes:
        task: the task.
        outcome: what ``run`` returned; None when every attempt failed.
        error: "Type: message" (first line) of the last attempt's exception; None on success.
        attempts: how many times the task ran.
    """

    task: J
    outcome: R | None
    error: str | None = None
    attempts: int = 1


def error_line(err: BaseException) -> str:
    """An exception as one line, "Type: first line of its message"."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


class Executor(Protocol):
    """Runs ``run(task, resources)`` for every task and yields each `Finished` when ready."""

    #: "local" or "ray", recorded in summary.json run.environment.executor.
    name: str

    def ship(self, value: T) -> Shipped[T]: ...

    def run(
        self,
        run: Callable[[J, Any], R],
        tasks: Sequence[J],
        resources: Any,
        *,
        max_retries: int,
    ) -> Iterator[Finished[J, R]]: ...

    def describe(self) -> dict[str, object]:
        """What summary.json's run.environment records of the executor."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs the tasks one after another in this process, in the given order (the planner
    groups them by model, so each model is built once)."""

    name = "local"

    def ship(self, value: T) -> Inline[T]:
        return Inline(value)

    def run(
        self,
        run: Callable[[J, Any], R],
        tasks: Sequence[J],
        resources: Any,
        *,
        max_retries: int,
    ) -> Iterator[Finished[J, R]]:
        for task in tasks:
            attempts = 0
            while True:
                attempts += 1
                try:
                    outcome = run(task, resources)
                except Exception as err:  # a task's failure must not stop the others
                    if attempts <= max_retries:
                        continue
                    yield Finished(task, None, error_line(err), attempts)
                    break
                yield Finished(task, outcome, None, attempts)
                break

    def describe(self) -> dict[str, object]:
        return {"executor": self.name}

    def close(self) -> None:
        pass


#: The former name of `LocalExecutor`.
SerialExecutor = LocalExecutor
