"""Where independent fits run: jobs (:mod:`.jobs`), on this machine (:mod:`.local`) or as Ray
tasks (:mod:`.ray_executor`, loaded only when asked for). Executors are registered by name as
models are (:func:`register_executor`); the CLI offers the registered names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

from kaggle_digits import Registry
from kaggle_digits.training.runtime import usable_cores

if TYPE_CHECKING:  # The runners load TensorFlow; a command's --help must not.
    from kaggle_digits.orchestration.executors.job import Job, JobResult

__all__ = ["Executor", "ExecutorOptions", "default_parallel", "list_executors", "make_executor",
           "register_executor"]


def default_parallel() -> int:
    """Members trained at once by default: two single-threaded members beat one two-threaded
    member on 2 cores (docs/results.md); more at once would multiply memory."""
    return min(2, usable_cores())


class Executor(Protocol):
    """What recipes, sweeps, searches and ``train.py --folds`` ask of an executor. A third
    executor implements these and registers a factory with :func:`register_executor`."""

    name: str

    def run(self, jobs: list[Job], log: Callable[[str], None] = print,
            description: str = "jobs") -> list[JobResult]:
        """Run every job (each through :func:`run_job` where it runs) and return their results
        in the jobs' order; a job's own failure is its result's ``error``."""

    def parallel_jobs(self, log: Callable[[str], None] = print) -> int:
        """How many of a search's trials to hand over at once."""

    def pruning_callback(self, study, trial):
        """The Keras callback that reports a search trial's epochs to ``study`` and stops the
        trial when its pruner says so, from wherever the trial trains."""

    def close(self) -> None:
        """Release what the executor started (a Ray instance, worker processes)."""

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc) -> None: ...


@dataclass(frozen=True)
class ExecutorOptions:
    """The CLI's "where the fits run" options, each executor taking those it needs."""

    parallel: int = 1
    ray_address: str | None = None
    cpus_per_job: float = 1
    gpus_per_job: float = 0
    max_retries: int = 3


# ``factory(options) -> Executor`` by name (``--executor NAME``).
_EXECUTORS: Registry = Registry("executor", "executor")
register_executor = _EXECUTORS.register


def list_executors() -> list[str]:
    return list(_EXECUTORS)


def make_executor(name: str = "local", options: ExecutorOptions | None = None) -> Executor:
    """The executor ``--executor`` names, built from ``options``.

    Raises:
        UserError: an unknown executor, a bad option, or what it needs not installed.
    """
    return _EXECUTORS.lookup(name)(options or ExecutorOptions())


@register_executor("local")
def _local(options: ExecutorOptions) -> Executor:
    """This machine, nothing to install: ``parallel`` fits at a time, each in a child process
    with its share of the cores (one at a time: in this process)."""
    from kaggle_digits.orchestration.executors.local import LocalExecutor

    return LocalExecutor(options.parallel)


@register_executor("ray")
def _ray(options: ExecutorOptions) -> Executor:
    """Ray tasks (Moritz et al. 2018, "Ray: A Distributed Framework for Emerging AI
    Applications") on a local instance or a cluster, retried from their last epoch when a
    worker dies; results come back as ordinary run directories."""
    from kaggle_digits.orchestration.executors.ray_executor import RayExecutor

    return RayExecutor(options.ray_address, options.cpus_per_job, options.gpus_per_job,
                       options.max_retries)
