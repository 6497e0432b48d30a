"""A job: "train this config into this run directory" (or one fold of it), and its result.

Recipes, sweeps, searches and ``train.py --folds`` hand their fits to an executor as jobs; every
executor runs a job through :func:`~kaggle_digits.orchestration.executors.jobs.run_job` in the
end. This module holds only the job's description, so that whoever makes jobs (the k-fold
code, say) need not load what runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig, check_name


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
