"""``train.py --folds K`` with the folds spread over an executor: each fold a job of its own
(two at a time in child processes on 2 cores, or Ray tasks), then the run assembled here."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.orchestration.executors import fold_jobs
from kaggle_digits.training.kfold import open_kfold_run
from kaggle_digits.models import build_model
from kaggle_digits.training.context import load_run_data, run_base_name
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.run import resume


def train_kfold_with(executor, config: TrainConfig, log: Callable[[str], None] = print
                     ) -> tuple[dict, Path]:
    """A new k-fold run whose folds train on ``executor``. Returns ``(metrics, run_dir)`` as
    ``train`` does; bad data or options fail before a run directory exists.

    Raises:
        ValueError: a fold failed (the others are kept, and ``--resume`` finishes the run).
    """
    config = config.resolved()
    data, is_sample = load_run_data(config, log)
    build_model(config.arch, config.precision, **config.model_options)
    with contextlib.ExitStack() as locks:  # A new directory, no other process's.
        run = RunDir.create(config.output_dir, run_base_name(config), locks)
        config.run_name = run.name
        open_kfold_run(config, data.fingerprint, is_sample)
    return _folds_then_assembly(executor, run, config, log)


def resume_kfold_with(executor, run_dir: str | Path, log: Callable[[str], None] = print,
                      data_dir: str | Path | None = None,
                      submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Resume an interrupted k-fold run with its unfinished folds on ``executor`` (each from
    its last completed epoch); anything but a resumable k-fold run is ``resume``'s to judge."""
    run = RunDir(run_dir)
    if not run.resumable or run.read_config().folds < 2:
        return resume(run.path, log=log, data_dir=data_dir, submissions_dir=submissions_dir)
    config = run.read_config()
    if data_dir is not None:
        config.data_dir = str(data_dir)
    return _folds_then_assembly(executor, run, config, log, data_dir, submissions_dir)


def _folds_then_assembly(executor, run: RunDir, config: TrainConfig, log, data_dir=None,
                         submissions_dir=None) -> tuple[dict, Path]:
    jobs = fold_jobs(run.name, config)
    log(f"{run}: {len(jobs)} of {config.folds} folds to train, each a job of its own on the "
        f"{executor.name} executor")
    with run.failure_guard():
        results = executor.run(jobs, log=log, description=run.name)
    failed = [result for result in results if result.error]
    if failed:
        raise UserError("; ".join(f"{r.job.label} failed: {r.error}" for r in failed)
                         + f". The finished folds are kept: python scripts/train.py --resume "
                           f"{run}")
    return resume(run.path, log=log, data_dir=data_dir, submissions_dir=submissions_dir)
