"""Jobs on this machine: one after another in this process, or N at a time in child processes.

Nothing to install or start. On 2 cores, two single-threaded fits at once train more images a
second than one two-threaded fit (measured: docs/results.md).
"""

from __future__ import annotations

import os
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.orchestration.executors.job import Job, JobResult
from kaggle_digits.orchestration.executors.jobs import run_job
from kaggle_digits.orchestration.progress import RunProgress
from kaggle_digits.training.runtime import leave_with_parent, usable_cores

POLL_SECONDS = 1.0


class LocalExecutor:
    """On this machine, no service, nothing to install.

    ``parallel=1``: in this process, one job after another. ``parallel=N``: N jobs at a time, each
    in a child process with ``usable_cores() // N`` TensorFlow threads. Jobs with extra callbacks
    (a search's pruning) always run in this process.
    """

    name = "local"

    def __init__(self, parallel: int = 1):
        if parallel < 1:
            raise UserError(f"parallel must be at least 1. Received: parallel={parallel}")
        self.parallel = parallel

    def close(self) -> None:
        """Nothing to shut down."""

    def parallel_jobs(self, log: Callable[[str], None] = print) -> int:
        """One: a search's trials train in this process, where its pruner can stop them."""
        return 1

    def pruning_callback(self, study, trial):
        """Reports each epoch to the trial in this process (see ``parallel_jobs``)."""
        from kaggle_digits.orchestration.executors.pruning import LocalPruning

        return LocalPruning(trial)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, jobs: list[Job], log: Callable[[str], None] = print,
            description: str = "jobs") -> list[JobResult]:
        progress = RunProgress(len(jobs), description)
        try:
            if self.parallel == 1 or len(jobs) == 1 or any(job.callbacks for job in jobs):
                results = []
                for job in jobs:
                    results.append(run_job(job, log))
                    progress.update()
                return results
            return self._run_in_children(jobs, progress)
        finally:
            progress.close()

    def _run_in_children(self, jobs: list[Job], progress: RunProgress) -> list[JobResult]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, wait

        threads = max(1, usable_cores() // self.parallel)
        # spawn: a fresh TensorFlow per child; one job per child: its threads set before TF loads.
        pool = ProcessPoolExecutor(max_workers=self.parallel, max_tasks_per_child=1,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_prepare_child, initargs=(threads, os.getpid()))
        futures = [pool.submit(run_job, job) for job in jobs]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_SECONDS)
                for _ in done:
                    progress.update()
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            # The children got the same Ctrl-C: each marks its run FAILED and resumable.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _prepare_child(threads: int, parent: int) -> None:
    """A child's TensorFlow threads, set before TensorFlow loads (the pool also starts a child
    after the last job, which then never imports it: seconds each), and line-buffered
    output: a pool child ends without flushing its buffers, which lost its last log lines.
    A child leaves when its command is killed outright (SIGTERM, kill -9) instead of training
    its job to the end under the job's lock; the run resumes with ``--resume``."""
    import sys

    leave_with_parent(parent, exit_code=1, farewell=(
        f"job process {os.getpid()} stopped: the command that started it (pid {parent}) is "
        "gone; --resume continues its runs"))
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = str(threads)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
