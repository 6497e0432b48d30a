"""Training runs: one split, k folds or all rows, from data files to a finished run directory.

``train(config)`` returns ``(metrics, run_dir)`` so scripts, tests and benchmarks all call the same
function; ``resume(run_dir)`` continues an interrupted one. What a run directory holds, and when it
counts as finished, is :mod:`kaggle_digits.runs.rundir`'s business; the fit of each member is
:mod:`kaggle_digits.training.fit`'s.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kaggle_digits import UserError
from kaggle_digits.data.splits import stratified_split, with_pseudo_labels
from kaggle_digits.evaluation.metrics import classification_scores
from kaggle_digits.models.transfer import WeightsUnavailableError
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig, package_versions
from kaggle_digits.training.context import (
    RunContext,
    check_loaded_data,
    continue_run,
    load_run_data,
    member_seed,
    run_base_name,
    run_guarded,
    training_rows,
)
from kaggle_digits.training.finish import common_metrics, finish_run, split_record
from kaggle_digits.training.fit import distribution_scope, fit_member, precision_note
from kaggle_digits.training.kfold import run_kfold


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
        first_model = config.build_model()
        run = RunDir.create(config.output_dir, run_base_name(config), locks)
        config.run_name = run.name
        config.versions = package_versions()
        run.write_config(config)
        run.write_state({"data_fingerprint": data.fingerprint, "is_sample": is_sample})
        return run_guarded(RunContext(config, data, run, is_sample, started, log, first_model,
                                      tuple(callbacks)), _run_member)


def check(configs: list[TrainConfig], log: Callable[[str], None] = print,
          labels: list[str] | None = None, offline_weights_fail_alone: bool = False
          ) -> list[TrainConfig]:
    """What ``train`` checks before it writes, for each of ``configs``, without training or
    writing anything: every setting, the data files and their split, the rows to exclude, the
    pseudo-labels and teachers, and each distinct model built once (``--check`` on train,
    recipes, sweeps and searches: a seconds-long answer before an hour of fits).

    Returns:
        The resolved configs, as the runs would save them.

    Raises:
        DataError, UserError: what ``train`` would refuse, before its run directory exists;
            prefixed by the config's label where ``labels`` name them. Pretrained weights
            that cannot be downloaded are not refused with ``offline_weights_fail_alone``
            (a sweep's or search's run then fails on its own, recorded, and the rest go on).
    """
    resolved, loaded, built = [], {}, set()
    for index, config in enumerate(configs):
        try:
            resolved.append(_check_one(config, log, loaded, built, offline_weights_fail_alone))
        except UserError as exc:
            if labels is None:
                raise
            raise UserError(f"{labels[index]}: {exc}") from None
    return resolved


def _check_one(config: TrainConfig, log: Callable[[str], None], loaded: dict,
               built: set, offline_weights_fail_alone: bool) -> TrainConfig:
    """One config checked; ``loaded`` (data by directory) and ``built`` (models) are shared
    by the configs of one check, so each file is read and each model built once."""
    config = config.resolved()
    for folder in (config.output_dir, config.submissions_dir):
        if Path(folder).exists() and not Path(folder).is_dir():
            raise UserError(f"{folder}: not a directory (where this run would write)")
    if config.data_dir not in loaded:
        loaded[config.data_dir] = load_run_data(config, log)[0]
    else:
        check_loaded_data(config, loaded[config.data_dir])
    model_key = (config.arch, config.precision, config.input_width,
                 repr(sorted(config.model_options.items())))
    if model_key not in built:
        built.add(model_key)
        try:
            with distribution_scope(config, lambda line: None):
                model = config.build_model()
        except WeightsUnavailableError as exc:
            if not offline_weights_fail_alone:
                raise
            log(f"check: {config.arch}: {exc}; that run will fail on its own")
            return config
        log(f"check: {config.arch} builds ({model.count_params():,} parameters)")
    return config


def resume(run_dir: str | Path, log: Callable[[str], None] = print, callbacks: tuple = (),
           data_dir: str | Path | None = None,
           submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Continue an interrupted run from its last completed epoch to its planned end.

    ``data_dir`` reads the data from elsewhere than the run recorded (a run moved to another
    machine); the files must still be the ones it started on, by SHA-256. ``submissions_dir``
    replaces where the submission copy goes (what the run recorded may be gone or read-only).
    Neither changes what the run learns.

    Raises:
        UserError: not a run directory, already finished, or its data files changed.
        RunInUse: another process is training, resuming or deleting it.
    """
    return continue_run(run_dir, _run_member, log, callbacks, data_dir, submissions_dir)


def _run_member(context: RunContext) -> dict:
    return run_kfold(context) if context.config.folds > 1 else _run_single(context)


def _run_single(context: RunContext) -> dict:
    config, data = context.config, context.data
    if config.full:
        train_idx, val_idx = np.arange(len(data.train_labels)), None
    else:
        train_idx, val_idx = stratified_split(data.train_labels, config.val_split,
                                              config.split_seed)
    train_idx = training_rows(config, train_idx)
    fit_data, pseudo_idx = with_pseudo_labels(data, config.pseudo_labels)
    result = fit_member(config, fit_data, np.concatenate([train_idx, pseudo_idx]), val_idx,
                        context.run, member_seed(config, 1), context.log, context.first_model,
                        context.callbacks)
    if val_idx is not None:
        context.run.save_array("val_probs", result.val_probs.astype(np.float32))
        context.run.save_array("val_labels", data.train_labels[val_idx])
        context.run.save_array("val_indices", val_idx)
    context.run.save_array("test_probs", result.test_probs.astype(np.float32))
    metrics = common_metrics(context, result)
    metrics.update(kind="full" if config.full else "holdout", train_rows=int(len(train_idx)),
                   excluded_rows=len(config.exclude_rows),
                   pseudo_label_rows=int(len(pseudo_idx)),
                   parameters=int(result.model.count_params()))
    if val_idx is not None:
        scores = classification_scores(data.train_labels[val_idx], result.val_probs)
        metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                       val_rows=int(len(val_idx)), split=split_record(context))
    else:
        metrics.update(val_accuracy=None, val_loss=None, val_rows=0, split=None)
    return finish_run(context, result.test_probs, metrics, val_idx, result.val_probs)


