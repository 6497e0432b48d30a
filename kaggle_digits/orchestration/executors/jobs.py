"""Running one job in this process: train, resume or reuse its run (or one fold of it) under
the run directory's lock. Every executor runs its jobs through :func:`run_job` in the end."""

from __future__ import annotations

import shutil
from typing import Callable

import keras

from kaggle_digits import UserError
from kaggle_digits.orchestration.executors.job import Job, JobResult
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.kfold import assemble_kfold_run, train_fold
from kaggle_digits.training.run import resume, train


def run_job(job: Job, log: Callable[[str], None] = print, data_dir: str | None = None
            ) -> JobResult:
    """Train (or resume, or reuse) one job in this process, holding its run directory's lock.

    A finished run is reused as it is; a run with a resume record continues; a directory with
    neither (it stopped before its state was written) holds nothing worth keeping and is
    trained again from scratch.
    """
    run = RunDir(job.run_dir)
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
            if run.resumable:  # A k-fold run whose fold jobs are done is assembled here.
                carry_on = assemble_kfold_run if job.config.folds > 1 else resume
                metrics, _ = carry_on(run.path, log=log, callbacks=job.callbacks,
                                      data_dir=data_dir)
            else:
                if run.path.exists():
                    shutil.rmtree(run.path)
                metrics, _ = train(job.config, log=log, callbacks=job.callbacks)
    except UserError as exc:  # Bad config or data, weights offline, in use: the job's own
        # failure, and the others go on. Anything else (a full disk, a bug) stops the command.
        log(f"[{job.label}] failed: {exc}")
        return JobResult(job, error=str(exc))
    return JobResult(job, metrics=metrics)
