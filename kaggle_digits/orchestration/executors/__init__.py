"""Where independent fits run: jobs (:mod:`.jobs`), on this machine (:mod:`.local`) or as Ray
tasks (:mod:`.ray_executor`, loaded only when asked for)."""

from __future__ import annotations

from kaggle_digits import UserError
from kaggle_digits.orchestration.executors.jobs import Job, JobResult, fold_jobs, member_jobs, run_job
from kaggle_digits.orchestration.executors.local import LocalExecutor, default_parallel

EXECUTORS = ("local", "ray")
__all__ = ["EXECUTORS", "Job", "JobResult", "LocalExecutor", "default_parallel", "fold_jobs",
           "make_executor", "member_jobs", "run_job"]


def make_executor(name: str = "local", ray_address: str | None = None, cpus_per_job: float = 1,
                  gpus_per_job: float = 0, max_retries: int = 3, parallel: int = 1):
    """The executor a CLI's ``--executor`` names.

    Raises:
        ValueError: an unknown executor, or Ray not installed.
    """
    if name == "local":
        return LocalExecutor(parallel)
    if name == "ray":
        from kaggle_digits.orchestration.executors.ray_executor import RayExecutor

        return RayExecutor(ray_address, cpus_per_job, gpus_per_job, max_retries)
    raise UserError(f"executor must be one of {', '.join(EXECUTORS)}. Received: "
                     f"executor={name!r}")
