"""Training runs: one split, k folds or all rows, from data files to a finished run directory.

``train(config)`` returns ``(metrics, run_dir)`` so scripts, tests and benchmarks all call the same
function; ``resume(run_dir)`` continues an interrupted one. What a run directory holds, and when it
counts as finished, is :mod:`kaggle_digits.runs.rundir`'s business; the fit of each member is
:mod:`kaggle_digits.training.fit`'s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kaggle_digits import UserError
from kaggle_digits.training.config import TrainConfig, package_versions
from kaggle_digits.data.load import NUM_CLASSES, format_data_report, load_competition_data
from kaggle_digits.evaluation.metrics import accuracy_interval, classification_scores, format_accuracy
from kaggle_digits.training.fit import (
    MemberResult,
    apply_determinism,
    distribution_scope,
    fit_member,
    precision_note,
)
from kaggle_digits.runs.io import sha256_file
from kaggle_digits.training.kfold import fold_outputs
from kaggle_digits.models import build_model
from kaggle_digits.evaluation.reports import write_html_report, write_run_report
from kaggle_digits.runs.rundir import DataMismatch, RunDir
from kaggle_digits.training.context import (
    RunContext,
    load_run_data,
    member_seed,
    plot_history,
    run_base_name,
)
from kaggle_digits.data.splits import stratified_folds, stratified_split, with_pseudo_labels
from kaggle_digits.submission.files import publish_submission, write_submission


def train(config: TrainConfig, log: Callable[[str], None] = print,
          callbacks: tuple = ()) -> tuple[dict, Path]:
    """Train as ``config`` says (one split, k folds, or all rows) and write its run directory.

    ``callbacks`` are extra Keras callbacks, called after each epoch's checkpoint is written.

    Returns:
        ``(metrics, run_dir)``; metrics is what ``metrics.json`` holds.

    Raises:
        DataError: bad input data (before anything is written).
        UserError: an invalid configuration or model options, or unavailable pretrained
            weights (before anything is written).
        RunInterrupted: Ctrl-C, after marking the run FAILED (its message says how to resume).
    """
    config = config.resolved()
    started = time.perf_counter()
    data, is_sample = load_run_data(config, log)
    if note := precision_note(config):
        log(note)
    # Seeded as fit_member seeds the first member, so that a run resumed before its first epoch
    # ended builds the same model and draws the same random numbers as an uninterrupted one.
    keras.utils.set_random_seed(member_seed(config, 1))
    with contextlib.ExitStack() as locks, distribution_scope(config, log):
        # Bad options fail here, before a run directory exists.
        first_model = build_model(config.arch, config.precision, **config.model_options)
        run = RunDir.create(config.output_dir, run_base_name(config), locks)
        config.run_name = run.name
        config.versions = package_versions()
        run.write_config(config)
        run.write_state({"data_fingerprint": data.fingerprint, "is_sample": is_sample})
        return _run_guarded(RunContext(config, data, run, is_sample, started, log, first_model,
                                       tuple(callbacks)))


def resume(run_dir: str | Path, log: Callable[[str], None] = print, callbacks: tuple = (),
           data_dir: str | Path | None = None,
           submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Continue an interrupted run from its last completed epoch to its planned end.

    ``data_dir`` reads the data from elsewhere than the run recorded (a run moved to another
    machine); the files must still be the ones it started on, by SHA-256. ``submissions_dir``
    replaces where the submission copy goes (what the run recorded may be gone or read-only).
    Neither changes what the run learns.

    Raises:
        ValueError: not a run directory, already finished, or its data files changed.
        RunInUse: another process is training, resuming or deleting it.
    """
    run = RunDir(run_dir)
    if not run.exists:
        raise UserError(f"{run}: not a run directory (no {run.config_path.name})")
    with run.lock():
        return _resume_locked(run, log, callbacks, data_dir, submissions_dir)


def _resume_locked(run: RunDir, log, callbacks, data_dir, submissions_dir) -> tuple[dict, Path]:
    if run.finished:
        run.tidy()
        raise UserError(f"{run}: this run already finished; nothing to resume")
    config = run.read_config()
    recorded = run.read_state()
    if recorded is None:
        raise UserError(f"{run}: no resume record; the run stopped before it started training, "
                         f"start it again instead")
    started = time.perf_counter()
    if data_dir is None and config.data_dir is None:
        # Saved before the data directory was resolved into every config (2026-12-07): the
        # default directory, recorded below.
        data_dir = config.with_data_dir().data_dir
    reads = data_dir or config.data_dir
    data = load_competition_data(reads)
    try:
        run.check_data(data.fingerprint)
    except DataMismatch as exc:
        raise UserError(f"{exc}: the data in {reads} is not what this run was started on; "
                         f"refusing to resume") from None
    apply_determinism(config)
    if config.versions and config.versions != package_versions():
        log(f"note: package versions differ from the run's start ({config.versions}); the "
            f"resumed epochs may not match an uninterrupted run exactly")
    moved = {key: str(value) for key, value in (("data_dir", data_dir),
                                                 ("submissions_dir", submissions_dir))
             if value is not None and str(value) != getattr(config, key)}
    if moved:
        for key, value in moved.items():
            setattr(config, key, value)
        run.write_config(config)  # The run now reads its data or writes its copy there.
    run.clear_failed()
    log(f"resuming {run}")
    with distribution_scope(config, log):
        return _run_guarded(RunContext(config, data, run, recorded["is_sample"], started, log,
                                       callbacks=tuple(callbacks)))


def _run_guarded(context: RunContext) -> tuple[dict, Path]:
    """Train; on any failure before metrics.json mark the run FAILED (it stays resumable while
    its state record is there). After metrics.json the run is finished, whatever comes."""
    run = context.run
    context.log(format_data_report(context.report))
    with run.failure_guard():
        metrics = _run_kfold(context) if context.config.folds > 1 else _run_single(context)
    run.tidy()
    return metrics, run.path


def _run_single(context: RunContext) -> dict:
    config, data = context.config, context.data
    if config.full:
        train_idx, val_idx = np.arange(len(data.train_labels)), None
    else:
        train_idx, val_idx = stratified_split(data.train_labels, config.val_split,
                                              config.split_seed)
    fit_data, pseudo_idx = with_pseudo_labels(data, config.pseudo_labels)
    result = fit_member(config, fit_data, np.concatenate([train_idx, pseudo_idx]), val_idx,
                        context.run, member_seed(config, 1), context.log, context.first_model,
                        context.callbacks)
    if val_idx is not None:
        context.run.save_array("val_probs", result.val_probs.astype(np.float32))
        context.run.save_array("val_labels", data.train_labels[val_idx])
        context.run.save_array("val_indices", val_idx)
    context.run.save_array("test_probs", result.test_probs.astype(np.float32))
    metrics = _common_metrics(context, result)
    metrics.update(kind="full" if config.full else "holdout", train_rows=int(len(train_idx)),
                   pseudo_label_rows=int(len(pseudo_idx)),
                   parameters=int(result.model.count_params()))
    if val_idx is not None:
        scores = classification_scores(data.train_labels[val_idx], result.val_probs)
        metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                       val_rows=int(len(val_idx)), split=_split_record(context))
    else:
        metrics.update(val_accuracy=None, val_loss=None, val_rows=0, split=None)
    return _finish(context, result.test_probs, metrics, val_idx, result.val_probs)


def _run_kfold(context: RunContext) -> dict:
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
    metrics = _common_metrics(context, MemberResult(None, oof, test_probs, durations, train_time,
                                                    predict_time))
    scores = classification_scores(data.train_labels, oof)
    pseudo_rows = len(with_pseudo_labels(data, config.pseudo_labels)[1])
    metrics.update(kind="kfold", folds=config.folds, fold_val_accuracy=fold_scores,
                   val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                   val_rows=int(len(all_rows)), parameters=parameters,
                   pseudo_label_rows=int(pseudo_rows),
                   train_rows=int(len(all_rows) - len(all_rows) // config.folds),
                   split=_split_record(context))
    return _finish(context, test_probs, metrics, all_rows, oof)


def _split_record(context: RunContext) -> dict:
    config = context.config
    return {"seed": config.split_seed, "val_split": None if config.folds > 1 else config.val_split,
            "folds": config.folds,
            "val_indices_sha256": sha256_file(context.run.array_path("val_indices"))}


def _common_metrics(context: RunContext, result: MemberResult) -> dict:
    config, durations = context.config, result.durations
    return {
        "arch": config.arch,
        "run_name": context.run.name,
        "epochs_run": len(durations) // max(config.folds, 1),
        "train_time_s": round(result.train_time, 2),
        "time_per_epoch_s": round(float(np.median(durations)), 2) if durations else None,
        "predict_test_time_s": round(result.predict_time, 2),
        "tta": config.tta,
        "test_rows": int(len(context.data.test_images)),
        "data_dir": config.data_dir,
        "is_sample": context.is_sample,
        "data_fingerprint": context.data.fingerprint,
        "data_checks": context.report,
        "versions": package_versions(),
    }


def _finish(context: RunContext, test_probs: np.ndarray, metrics: dict,
            val_idx: np.ndarray | None, val_probs: np.ndarray | None) -> dict:
    """Submission, its copy and record, reports, and last of all metrics.json."""
    config, data, run, log = context.config, context.data, context.run, context.log
    write_submission(test_probs.argmax(axis=1), run.submission_path,
                     expected_rows=len(data.test_images))
    metrics.update(total_time_s=round(time.perf_counter() - context.started, 2),
                   finished=dt.datetime.now().isoformat(timespec="seconds"))
    if metrics["val_accuracy"] is not None:
        correct = round(metrics["val_accuracy"] * metrics["val_rows"])
        metrics["val_accuracy_ci95"] = list(accuracy_interval(correct, metrics["val_rows"]))
    publish_submission(run, metrics, config.submissions_dir)
    if val_idx is not None:
        write_run_report(run, data.train_images[val_idx], data.train_labels[val_idx],
                         val_probs, metrics)
    else:
        plot_history(run, f"{run.name}: full-data fit (no validation)")
        write_html_report(run, metrics)
    run.write_metrics(metrics)
    if val_idx is not None:
        log(f"validation accuracy {format_accuracy(metrics['val_accuracy'], metrics['val_rows'])}, "
            f"loss {metrics['val_loss']:.4f}, after {metrics['epochs_run']} epochs, "
            f"{metrics['train_time_s']:.0f}s of training")
    else:
        log(f"trained on all {metrics['train_rows']} labelled rows for {metrics['epochs_run']} "
            f"epochs, {metrics['train_time_s']:.0f}s of training (no validation score)")
    return metrics
