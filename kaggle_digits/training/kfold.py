"""k-fold runs, all of them here: one fold's fit under the fold's lock, the folds as jobs of
their own, the run assembled from its recorded folds, and the path that spreads the folds over
an executor (``train.py --folds K --parallel N``, recipes, sweeps).

The folds of a run are independent fits, so executors run them at once (two per machine here,
more on a cluster); :func:`assemble_kfold_run` then finishes the run from the recorded folds.
Which model and rows belong to which fold is the run directory's to say
(:meth:`~kaggle_digits.runs.rundir.RunDir.fold_models`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Callable

import numpy as np

from kaggle_digits import UserError, command_line
from kaggle_digits.data.load import NUM_CLASSES, resolve_data_dir
from kaggle_digits.data.splits import stratified_folds, with_pseudo_labels
from kaggle_digits.evaluation.metrics import classification_scores
from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig, package_versions
from kaggle_digits.training.context import (
    RunContext,
    continue_run,
    load_run_data,
    member_seed,
    plot_history,
    run_base_name,
    training_rows,
)
from kaggle_digits.training.finish import common_metrics, finish_run, split_record
from kaggle_digits.training.fit import MemberResult, distribution_scope, fit_member

# The fold jobs of one run start together and each takes the run's lock for a moment.
RUN_LOCK_WAIT_S = 30.0


def fold_outputs(context: RunContext, number: int, folds: list
                  ) -> tuple[dict, np.ndarray, np.ndarray]:
    """Fold ``number``'s record and its validation and test probabilities: read when the fold
    finished earlier (here or as a job of its own), else fitted (or resumed) now under the
    fold's lock, so two processes never fit the same fold."""
    fold = context.run.fold(number, create=True)
    with fold.lock():
        record = fold.read_fold_record()
        if record is not None:
            return record, fold.load_array("val_probs"), fold.load_array("test_probs")
        config, data = context.config, context.data
        train_idx, val_idx = folds[number - 1]
        train_idx = training_rows(config, train_idx)
        fit_data, pseudo_idx = with_pseudo_labels(data, config.pseudo_labels)
        context.log(f"fold {number}/{config.folds}")
        started = _now()
        result = fit_member(config, fit_data, np.concatenate([train_idx, pseudo_idx]), val_idx,
                            fold, member_seed(config, number), context.log,
                            context.first_model if number == 1 else None, context.callbacks)
        record = {"fold": number, "val_rows": int(len(val_idx)),
                  "val_accuracy": classification_scores(data.train_labels[val_idx],
                                                        result.val_probs)["accuracy"],
                  "durations": result.durations, "train_time_s": result.train_time,
                  "predict_test_time_s": result.predict_time,
                  "parameters": int(result.model.count_params()),
                  "started": started, "finished": _now()}
        fold.save_array("val_probs", result.val_probs.astype(np.float32))
        fold.save_array("test_probs", result.test_probs.astype(np.float32))
        plot_history(fold, f"{context.run.name} fold {number}")
        fold.write_fold_record(record)
        fold.remove_resume_files()
        context.log(f"fold {number}/{config.folds}: validation accuracy "
                    f"{record['val_accuracy']:.4%}")
        return record, result.val_probs, result.test_probs


def train_fold(config: TrainConfig, number: int, log: Callable[[str], None] = print,
               callbacks: tuple = ()) -> dict:
    """Fit fold ``number`` of the k-fold run ``config`` names, as a job of its own.

    The folds of one run are independent fits, so executors run them at once (two per machine
    here, more on a cluster); the run directory is created on first use and the fold's lock is
    held while it trains. ``train``/``resume`` of the run then only assembles the recorded folds.

    Returns:
        The fold's record (its validation accuracy, durations, parameters).

    Raises:
        ValueError: not a k-fold run, a fold number out of range, or a run directory of that
            name that holds other settings or data.
        RunInUse: another process trains this fold (or holds the whole run).
    """
    config = config.resolved()
    if config.folds < 2 or not 1 <= number <= config.folds or not config.run_name:
        raise UserError(f"fold jobs need a named k-fold run and a fold in 1..folds. Received: "
                         f"folds={config.folds}, fold={number}, run_name={config.run_name!r}")
    data, is_sample = load_run_data(config, log)
    run = open_kfold_run(config, data.fingerprint, is_sample)
    folds = stratified_folds(data.train_labels, config.folds, config.split_seed)
    with distribution_scope(config, log):
        context = RunContext(config, data, run, is_sample, time.perf_counter(), log,
                             callbacks=tuple(callbacks))
        with run.failure_guard(f"fold {number}"):
            return fold_outputs(context, number, folds)[0]


def open_kfold_run(config: TrainConfig, fingerprint: dict[str, str], is_sample: bool) -> RunDir:
    """The k-fold run directory ``config`` names, created (config and resume record) if it is
    not there; one that holds other settings or data is refused, not mixed into."""
    run = RunDir(Path(config.output_dir) / config.run_name)
    with run.lock(wait_s=RUN_LOCK_WAIT_S):
        changed = run.changed_settings(config, fingerprint)
        if changed:
            raise UserError(f"{run} holds a k-fold run with other settings "
                             f"({', '.join(changed)}); move it away or use another name")
        if not run.exists:
            run.path.mkdir(parents=True, exist_ok=True)
            config.versions = package_versions()
            run.write_config(config)
            run.write_state({"data_fingerprint": fingerprint, "is_sample": is_sample})
    return run


def run_kfold(context: RunContext) -> dict:
    """Every fold (read when recorded, else fitted here), then the run assembled from them:
    out-of-fold predictions scored on every labelled row, the test rows' fold average, the
    submission, reports and metrics."""
    config, data, run = context.config, context.data, context.run
    folds = stratified_folds(data.train_labels, config.folds, config.split_seed)
    oof = np.zeros((len(data.train_labels), NUM_CLASSES), dtype=np.float32)
    test_probs = np.zeros((len(data.test_images), NUM_CLASSES), dtype=np.float64)
    fold_of_row = np.zeros(len(data.train_labels), dtype=np.int64)
    fold_scores, durations, train_time, predict_time = [], [], 0.0, 0.0
    for number, (_, val_idx) in enumerate(folds, start=1):
        record, fold_val, fold_test = fold_outputs(context, number, folds)
        oof[val_idx] = fold_val
        fold_of_row[val_idx] = number
        test_probs += fold_test / config.folds
        fold_scores.append(record["val_accuracy"])
        durations += record["durations"]
        train_time += record["train_time_s"]
        predict_time += record["predict_test_time_s"]
        parameters = record["parameters"]
    all_rows = np.arange(len(data.train_labels))
    run.save_array("val_probs", oof)
    run.save_array("val_labels", data.train_labels)
    run.save_array("val_indices", all_rows)
    run.save_array("fold_of_row", fold_of_row)
    run.save_array("test_probs", test_probs.astype(np.float32))
    metrics = common_metrics(context, MemberResult(None, oof, test_probs, durations, train_time,
                                                    predict_time))
    scores = classification_scores(data.train_labels, oof)
    pseudo_rows = len(with_pseudo_labels(data, config.pseudo_labels)[1])
    metrics.update(kind="kfold", folds=config.folds, fold_val_accuracy=fold_scores,
                   val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                   val_rows=int(len(all_rows)), parameters=parameters,
                   pseudo_label_rows=int(pseudo_rows),
                   # What a fold's model trained on, on average: its rows less those excluded.
                   train_rows=int(round(np.mean([len(training_rows(config, train_idx))
                                                 for train_idx, _ in folds]))),
                   excluded_rows=len(config.exclude_rows),
                   split=split_record(context))
    return finish_run(context, test_probs, metrics, all_rows, oof)


def assemble_kfold_run(run_dir: str | Path, log: Callable[[str], None] = print,
                       callbacks: tuple = (), data_dir: str | Path | None = None,
                       submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Finish the unfinished k-fold run in ``run_dir`` from its recorded folds (fitting here, in
    turn, any that have no record yet): what recipes, sweeps and ``train.py --folds`` run once
    their fold jobs are done. ``data_dir`` and ``submissions_dir`` as for ``resume``.

    Raises:
        UserError: not an unfinished k-fold run, or its data files changed.
    """
    run = RunDir(run_dir)
    if run.exists and run.read_config().folds < 2:
        raise UserError(f"{run}: not a k-fold run")
    return continue_run(run.path, run_kfold, log, callbacks, data_dir, submissions_dir)


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
    by ``run_job`` of ``Job(label, config)`` (:func:`assemble_kfold_run`)."""
    if config.folds < 2:
        return [Job(label, config)]
    _, is_sample = resolve_data_dir(config.data_dir)
    open_kfold_run(config.resolved(), fingerprint, is_sample)
    return fold_jobs(label, config)


def train_kfold_with(executor, config: TrainConfig, log: Callable[[str], None] = print
                     ) -> tuple[dict, Path]:
    """A new k-fold run whose folds train on ``executor``. Returns ``(metrics, run_dir)`` as
    ``train`` does; bad data or options fail before a run directory exists.

    Raises:
        ValueError: a fold failed (the others are kept, and ``--resume`` finishes the run).
    """
    config = config.resolved()
    data, is_sample = load_run_data(config, log)
    config.build_model()
    with contextlib.ExitStack() as locks:  # A new directory, no other process's.
        run = RunDir.create(config.output_dir, run_base_name(config), locks)
        config.run_name = run.name
        open_kfold_run(config, data.fingerprint, is_sample)
    return _folds_then_assembly(executor, run, config, log)


def resume_kfold_with(executor, run_dir: str | Path, log: Callable[[str], None] = print,
                      data_dir: str | Path | None = None,
                      submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Resume an interrupted k-fold run with its unfinished folds on ``executor`` (each from
    its last completed epoch), then assemble it."""
    run = RunDir(run_dir)
    if not run.resumable or run.read_config().folds < 2:
        raise UserError(f"{run}: not an unfinished k-fold run; resume it with train.py "
                        f"--resume alone")
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
                         + f". The finished folds are kept: {command_line('train')} --resume "
                           f"{run}")
    return assemble_kfold_run(run.path, log=log, data_dir=data_dir,
                              submissions_dir=submissions_dir)


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="milliseconds")
