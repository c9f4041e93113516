"""The Ray executor: a run's tasks on a Ray cluster, or on a local Ray instance.

``rbl run CONFIG --executor ray`` (this module needs ``pip install 'robustbench-local[ray]'``):

- with no ``--ray-address`` and no ``RAY_ADDRESS``, a new local Ray instance sized to the
  machine is started for the run and shut down with it (never an older instance that a
  killed driver left behind); with an address (``auto``, ``host:6379``, ``ray://host:10001``)
  the run connects to that cluster and only disconnects at the end. A Ray already
  initialised in this process (a test, a notebook) is used as it is and left running.
- every task reserves ``[executor] cpus_per_task`` CPUs and ``gpus_per_task`` GPUs.
- the shared values (the evaluated images and labels, each user model) are put in the object
  store once (`InStore`); a worker fetches them when it builds its bench for the run's first
  task it gets, not for every task. Zoo models are read from the checkpoint cache, which the
  workers must see at the same path (one machine, or a shared file system).
- results come back as they finish (``ray.wait``). A task that raises is submitted again
  by this driver up to ``max_retries`` times, then reported as failed; a task whose worker
  died is resubmitted by Ray itself (``max_retries`` as well), then reported as failed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from robustbench_local.bench.executor import Finished, error_line

__all__ = ["InStore", "RayExecutor", "RayMissingError", "check_ray"]

J = TypeVar("J")
R = TypeVar("R")
T = TypeVar("T")

INSTALL_HINT = "install robustbench-local[ray] (pip install 'robustbench-local[ray]')"


class RayMissingError(ValueError):
    """--executor ray without Ray installed (a ValueError: the CLI's one-line exit 2)."""


def check_ray() -> str:
    """Ray's version; raises RayMissingError (one line, what to install) without it."""
    try:
        import ray
    except ImportError as err:
        raise RayMissingError(f"--executor ray needs Ray: {INSTALL_HINT}") from err
    return str(ray.__version__)


@dataclass(frozen=True)
class InStore(Generic[T]):
    """A value in Ray's object store; ``get`` fetches it where a task runs (cached there by
    the object store, so a node fetches it once)."""

    ref: Any  # ray.ObjectRef

    def get(self) -> T:
        import ray

        return ray.get(self.ref)


class RayExecutor:
    """Runs tasks as Ray tasks; see the module docstring.

    Args:
        address: the cluster's address, or None for ``RAY_ADDRESS`` / a new local instance.
        cpus_per_task, gpus_per_task: what each task reserves.
        init_options: more ``ray.init`` keywords for a new local instance (num_cpus, ...).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        **init_options: Any,
    ) -> None:
        check_ray()
        import ray

        self.cpus_per_task, self.gpus_per_task = cpus_per_task, gpus_per_task
        self._owned = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            if address is None:
                # "local": always a new instance, never one a killed driver left behind.
                ray.init(
                    address="local",
                    include_dashboard=False,
                    log_to_driver=False,
                    **init_options,
                )
            else:
                ray.init(address=address, log_to_driver=False)
            self._owned = True

    def ship(self, value: T) -> InStore[T]:
        import ray

        return InStore(ray.put(value))

    def run(
        self,
        run: Callable[[J, Any], R],
        tasks: Sequence[J],
        resources: Any,
        *,
        max_retries: int,
    ) -> Iterator[Finished[J, R]]:
        import ray
        from ray.exceptions import RayError, RayTaskError

        remote = ray.remote(run).options(
            num_cpus=self.cpus_per_task,
            num_gpus=self.gpus_per_task,
            max_retries=max_retries,  # a dead worker: Ray resubmits
            retry_exceptions=False,  # an exception: this driver resubmits (and counts)
        )
        # The resources hold references (InStore) to the shared values, which a task
        # fetches only when it needs them; the small rest travels with each task.
        shared = ray.put(resources)
        in_flight: dict[Any, tuple[J, int]] = {}

        def submit(task: J, attempt: int) -> None:
            in_flight[remote.remote(task, shared)] = (task, attempt)

        for task in tasks:
            submit(task, 1)
        try:
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                task, attempt = in_flight.pop(ready[0])
                try:
                    outcome = ray.get(ready[0])
                except RayTaskError as err:
                    if attempt <= max_retries:
                        submit(task, attempt + 1)
                        continue
                    cause = getattr(err, "cause", None)
                    line = error_line(cause) if isinstance(cause, BaseException) else None
                    yield Finished(task, None, line or error_line(err), attempt)
                    continue
                except RayError as err:  # the worker died more often than max_retries
                    yield Finished(task, None, error_line(err), attempt + max_retries)
                    continue
                yield Finished(task, outcome, None, attempt)
        finally:
            for ref in in_flight:  # the driver stops early (an error, Ctrl-C)
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def describe(self) -> dict[str, object]:
        import ray

        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {
            "executor": self.name,
            "ray": str(ray.__version__),
            "ray_nodes": len(nodes),
            "ray_cpus": int(sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)),
            "ray_gpus": int(sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)),
        }

    def close(self) -> None:
        """Shut down the local instance this executor started (or disconnect from a cluster)."""
        import ray

        if self._owned and ray.is_initialized():
            ray.shutdown()
        self._owned = False
