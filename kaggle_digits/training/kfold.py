"""k-fold runs as separate jobs: one fold's fit under the fold's lock, and the run it shares.

The folds of a run are independent fits, so executors run them at once (two per machine here,
more on a cluster); ``train``/``resume`` of the run then assembles the recorded folds.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Callable

import numpy as np

from kaggle_digits import UserError
from kaggle_digits.training.config import TrainConfig, package_versions
from kaggle_digits.evaluation.metrics import classification_scores
from kaggle_digits.training.fit import distribution_scope, fit_member
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.context import RunContext, load_run_data, member_seed, plot_history
from kaggle_digits.data.splits import stratified_folds, with_pseudo_labels

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


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="milliseconds")
