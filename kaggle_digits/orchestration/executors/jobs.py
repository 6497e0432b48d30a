"""A job: "train this config into this run directory", and running one in this process.

Recipes, sweeps and searches hand their fits to an executor as jobs (:mod:`.local` on this
machine, :mod:`.ray_executor` on a Ray cluster); every executor runs a job through
:func:`run_job` in the end, which holds the run directory's lock while it trains, resumes or
reuses it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.training.config import TrainConfig, check_name
from kaggle_digits.runs.rundir import RunDir


@dataclass
class Job:
    """Train ``config`` into ``config.output_dir/config.run_name`` (or resume it there); with
    ``fold`` > 0, only that fold of the k-fold run (the run is finished by a job without one)."""

    label: str
    config: TrainConfig
    callbacks: tuple = ()  # Extra Keras callbacks (a search's pruning), built where the job runs.
    fold: int = 0

    def __post_init__(self):
        check_name(self.config.run_name or "", "run_name")  # Its directory stays in output_dir.

    @property
    def run_dir(self) -> Path:
        return Path(self.config.output_dir) / self.config.run_name

    @property
    def work_dir(self) -> Path:
        """What this job writes: its run directory, or its fold's directory in it."""
        return RunDir(self.run_dir).fold(self.fold).path if self.fold else self.run_dir


@dataclass
class JobResult:
    job: Job
    metrics: dict | None = None
    error: str | None = None  # The job's own failure (bad config or data); the others go on.
    attempts: int = 1
    resumed_from: list[int] = field(default_factory=list)  # Epochs done when each attempt began.
    reused: bool = False  # Finished before this command; nothing was trained.

    @property
    def run_dir(self) -> Path:
        return self.job.run_dir


def fold_jobs(label: str, config: TrainConfig) -> list[Job]:
    """The folds of the k-fold run ``config`` names that have no record yet, a job each."""
    run = RunDir(Path(config.output_dir) / config.run_name)
    return [Job(f"{label} fold {number}/{config.folds}", config, fold=number)
            for number in range(1, config.folds + 1)
            if run.fold(number).read_fold_record() is None]


def member_jobs(label: str, config: TrainConfig, fingerprint: dict[str, str]) -> list[Job]:
    """One job for a run, or one per unfinished fold of a k-fold run (its directory opened
    here, so that the folds share it): a recipe's or sweep's 5-fold runs then train their
    folds on all the executor's slots (15 fits on 2 slots instead of 3 runs on 2), and a
    killed command loses at most the epochs in flight. A k-fold run is assembled afterwards
    by ``run_job`` of ``Job(label, config)``."""
    if config.folds < 2:
        return [Job(label, config)]
    from kaggle_digits.data.load import resolve_data_dir
    from kaggle_digits.training.kfold import open_kfold_run  # Loads TensorFlow: only for k-fold runs.

    _, is_sample = resolve_data_dir(config.data_dir)
    open_kfold_run(config.resolved(), fingerprint, is_sample)
    return fold_jobs(label, config)


def run_job(job: Job, log: Callable[[str], None] = print, data_dir: str | None = None
            ) -> JobResult:
    """Train (or resume, or reuse) one job in this process, holding its run directory's lock.

    A finished run is reused as it is; a run with a resume record continues; a directory with
    neither (it stopped before its state was written) holds nothing worth keeping and is
    trained again from scratch.
    """
    from kaggle_digits.training.kfold import train_fold
    from kaggle_digits.training.run import resume, train

    run = RunDir(job.run_dir)
    import keras

    keras.backend.clear_session()
    try:
        if job.fold:
            if run.finished:
                log(f"[{job.label}] {run} finished earlier; reused")
                return JobResult(job, metrics=run.fold(job.fold).read_fold_record(), reused=True)
            return JobResult(job, metrics=train_fold(job.config, job.fold, log, job.callbacks))
        with run.lock():
            changed = run.changed_settings(job.config) if run.finished else []
            if changed:
                raise UserError(f"{run} holds a finished run with other settings "
                                 f"({', '.join(changed)}); move it away or use another name")
            if run.finished:
                run.tidy()
                log(f"[{job.label}] {run} finished earlier; reused")
                return JobResult(job, metrics=run.read_metrics(), reused=True)
            if run.resumable:
                metrics, _ = resume(run.path, log=log, callbacks=job.callbacks, data_dir=data_dir)
            else:
                if run.path.exists():
                    shutil.rmtree(run.path)
                metrics, _ = train(job.config, log=log, callbacks=job.callbacks)
    except (UserError, OSError) as exc:  # Bad config or data, weights offline, in use, disk
        # full: the job's own failure, as a command would report it; the others go on. Any
        # other exception is a bug and stops the command with its traceback.
        log(f"[{job.label}] failed: {exc}")
        return JobResult(job, error=str(exc))
    return JobResult(job, metrics=metrics)
