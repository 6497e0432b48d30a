"""What every stage of a run shares: its data, loaded and checked, and its context."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kaggle_digits import UserError
from kaggle_digits.data.load import (
    DigitData,
    data_report,
    format_data_report,
    load_competition_data,
    resolve_data_dir,
)
from kaggle_digits.data.splits import check_pseudo_labels, stratified_folds, stratified_split
from kaggle_digits.evaluation.plots import plot_learning_curves
from kaggle_digits.runs.rundir import DataMismatch, RunDir
from kaggle_digits.training.config import TrainConfig, package_versions
from kaggle_digits.training.distill import check_teachers
from kaggle_digits.training.fit import apply_determinism, distribution_scope

SAMPLE_NOTICE = (
    "NOTICE: no competition data found (data/digit-recognizer/ or /kaggle/input/digit-recognizer/);"
    " training on the small bundled sample in {path}. Its submission is NOT a valid Kaggle "
    "submission. Get the real data with `python scripts/fetch.py`."
)


def load_run_data(config: TrainConfig, log: Callable[[str], None]) -> tuple[DigitData, bool]:
    """The data ``config`` trains on (the bundled sample, said so, when there is none), checked
    against its split and pseudo-labels before anything is written; ``config.data_dir`` is set
    to where it was found. Returns ``(data, is_sample)``."""
    data_dir, is_sample = resolve_data_dir(config.data_dir)
    config.data_dir = str(data_dir)
    if is_sample:
        log(SAMPLE_NOTICE.format(path=data_dir))
    data = load_competition_data(data_dir)
    check_loaded_data(config, data)
    apply_determinism(config)
    return data, is_sample


def check_loaded_data(config: TrainConfig, data: DigitData) -> None:
    """What ``config`` asks of data already loaded: its split, rows to exclude,
    pseudo-labels and teachers."""
    check_split(config, data)
    check_pseudo_labels(data, config.pseudo_labels)
    check_teachers(config, data.train_labels, data.fingerprint)


def check_split(config: TrainConfig, data: DigitData) -> None:
    """Fail on labels that cannot be split as configured, or rows to exclude that the data
    has not, before a run directory exists."""
    beyond = [row for row in config.exclude_rows if row >= len(data.train_labels)]
    if beyond:
        raise UserError(f"{config.data_dir}: train.csv has {len(data.train_labels)} rows; "
                        f"exclude_rows names row {beyond[0]} (counted from 0)")
    try:
        if config.folds > 1:
            splits = stratified_folds(data.train_labels, config.folds, config.split_seed)
            parts = [train_idx for train_idx, _ in splits]
        elif not config.full:
            parts = [stratified_split(data.train_labels, config.val_split, config.split_seed)[0]]
        else:
            parts = [np.arange(len(data.train_labels))]
    except ValueError as exc:
        raise UserError(f"{config.data_dir}: train.csv: {exc}") from None
    if config.exclude_rows:
        for part in parts:
            kept = data.train_labels[training_rows(config, part)]
            missing = sorted(set(data.train_labels[part].tolist()) - set(kept.tolist()))
            if missing:
                left = ("no rows at all" if not len(kept) else
                        "no " + ", ".join(f"{digit}s" for digit in missing))
                raise UserError(
                    f"exclude_rows leaves {left} to train on ({len(config.exclude_rows)} of "
                    f"{len(data.train_labels)} rows excluded): a model that never sees a digit can "
                    f"never predict it")


@dataclass
class RunContext:
    """What every stage of one run needs, started or resumed."""

    config: TrainConfig
    data: DigitData
    run: RunDir
    is_sample: bool
    started: float
    log: Callable[[str], None]
    first_model: keras.Model | None = None  # Built before the run dir exists, to fail early.
    callbacks: tuple = ()  # Keras callbacks after each epoch's checkpoint (search, cluster jobs).
    report: dict = field(init=False)  # The data checks, logged and written into metrics.json.

    def __post_init__(self):
        self.report = data_report(self.data)


def run_base_name(config: TrainConfig) -> str:
    """``<timestamp>-<arch>[-kfoldK|-full]``, or the configured name."""
    suffix = f"-kfold{config.folds}" if config.folds > 1 else "-full" if config.full else ""
    return config.run_name or RunDir.timestamped_name(config.arch, suffix)


def training_rows(config: TrainConfig, rows: np.ndarray) -> np.ndarray:
    """``rows`` without the ones the config excludes from training (never from scoring)."""
    return np.setdiff1d(rows, np.asarray(config.exclude_rows, dtype=rows.dtype))


def member_seed(config: TrainConfig, number: int) -> int:
    """The training seed of member ``number`` (fold ``number`` of a k-fold run; 1 otherwise)."""
    return config.seed + number if config.folds > 1 else config.seed


def plot_history(member: RunDir, title: str) -> None:
    if member.history_path.exists():
        plot_learning_curves(member.history_path, member.report_path("learning_curves"),
                             title=title)


def run_guarded(context: RunContext, body: Callable[[RunContext], dict]) -> tuple[dict, Path]:
    """Run ``body`` (a whole run, or a k-fold run's assembly) under the run's failure guard;
    once it has written metrics.json the run is finished, whatever comes after."""
    context.log(format_data_report(context.report))
    with context.run.failure_guard():
        metrics = body(context)
    context.run.tidy()
    return metrics, context.run.path


def continue_run(run_dir: str | Path, body: Callable[[RunContext], dict],
                 log: Callable[[str], None] = print, callbacks: tuple = (),
                 data_dir: str | Path | None = None,
                 submissions_dir: str | Path | None = None) -> tuple[dict, Path]:
    """Reopen the unfinished run in ``run_dir`` under its lock, as it was configured, and run
    ``body`` on it (see ``resume`` and ``assemble_kfold_run``).

    ``data_dir`` reads the data from elsewhere than the run recorded (a run moved to another
    machine); the files must still be the ones it started on, by SHA-256. ``submissions_dir``
    replaces where the submission copy goes. Neither changes what the run learns.

    Raises:
        UserError: not a run directory, already finished, or its data files changed.
        RunInUse: another process is training, resuming or deleting it.
    """
    run = RunDir(run_dir)
    if not run.exists:
        raise UserError(f"{run}: not a run directory (no {run.config_path.name})")
    with run.lock():
        context = _reopen(run, log, callbacks, data_dir, submissions_dir)
        with distribution_scope(context.config, log):
            return run_guarded(context, body)


def _reopen(run: RunDir, log, callbacks, data_dir, submissions_dir) -> RunContext:
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
    return RunContext(config, data, run, recorded["is_sample"], started, log,
                      callbacks=tuple(callbacks))
