"""Hyperparameter studies: many training runs on one split, summarised in one table.

A study is a list of ``(label, arch, overrides)``; overrides name TrainConfig fields (``epochs``,
``batch_size``, ``learning_rate``, ``augment`` ...) or model options (``filters``, ``activation``,
``stride`` ...). Every run is an ordinary run directory, so reports and ensembles can use them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from kaggle_digits import UserError
from kaggle_digits.data.load import current_fingerprint
from kaggle_digits.runs.io import write_text_atomic
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import ALIASES, TrainConfig, parse_value

StudyRun = tuple[str, str, dict]

STUDIES: dict[str, tuple[str, list[StudyRun]]] = {
    "seed000-s6": (
        "seed report 000 section 6: simple_cnn trained 5 vs 10 epochs; small vs large filters",
        [
            ("baseline: 5 epochs, filters 32-64-64", "simple_cnn", {"epochs": 5}),
            ("10 epochs", "simple_cnn", {"epochs": 10}),
            ("small filters 16-32-32", "simple_cnn", {"epochs": 5, "filters": "16-32-32"}),
            ("large filters 64-128-128", "simple_cnn", {"epochs": 5, "filters": "64-128-128"}),
        ],
    ),
    "seed001": (
        "seed report 001: simple_cnn baseline against one change at a time, and transfer learning",
        [
            ("baseline: 8 epochs, batch 64", "simple_cnn", {"epochs": 8}),
            ("20 epochs", "simple_cnn", {"epochs": 20}),
            ("batch 32", "simple_cnn", {"epochs": 8, "batch_size": 32}),
            ("learning rate 0.01", "simple_cnn", {"epochs": 8, "learning_rate": 0.01}),
            ("sigmoid activation", "simple_cnn", {"epochs": 8, "activation": "sigmoid"}),
            ("stride 2 (same padding)", "simple_cnn", {"epochs": 8, "stride": 2,
                                                       "padding": "same"}),
            ("augmentation", "simple_cnn", {"epochs": 8, "augment": True}),
            ("transfer: ResNet50 (ImageNet)", "resnet50", {}),
        ],
    ),
}


def parse_grid(grid: str, arch: str) -> list[StudyRun]:
    """``"epochs=5,10 filters=16-32-32,64-128-128"`` -> every combination, as study runs."""
    axes = []
    for item in grid.split():
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise UserError(f"grid items look like name=value1,value2. Received: {item!r}")
        axes.append([(ALIASES.get(key, key), parse_value(v)) for v in values.split(",")])
    runs = []
    for combination in itertools.product(*axes):
        overrides = dict(combination)
        label = " ".join(f"{key}={value}" for key, value in combination) or "defaults"
        runs.append((label, arch, overrides))
    return runs


def check_study(runs: list[StudyRun], base: TrainConfig,
                log: Callable[[str], None] = print) -> list[TrainConfig]:
    """Every run of a study checked as a run would check it, before the first one trains."""
    from kaggle_digits.training.run import check

    base = base.with_data_dir()
    configs = []
    for label, arch, overrides in runs:
        try:
            configs.append(base.override({"arch": arch, **overrides}))
        except UserError as exc:
            raise UserError(f"run {label}: {exc}") from None
    check(configs, log, labels=[f"run {label}" for label, _, _ in runs],
          offline_weights_fail_alone=True)
    return configs


def run_study(name: str, runs: list[StudyRun], base: TrainConfig, out_root: str | Path = "sweeps",
              log: Callable[[str], None] = print, executor=None) -> tuple[pd.DataFrame, Path]:
    """Train every run on the same split and write ``summary.md`` and ``summary.csv``.

    The runs go to ``executor`` (default: this process, one after another) as jobs. A run that
    fails for a reason of its own (e.g. ImageNet weights offline) is recorded with its error; the
    rest go on.
    """
    from kaggle_digits.orchestration.executors.job import Job, JobResult
    from kaggle_digits.orchestration.executors.jobs import run_job
    from kaggle_digits.orchestration.executors.local import LocalExecutor
    from kaggle_digits.training.kfold import member_jobs

    base = base.with_data_dir()  # Every run and fold job reads the same files.
    configs = list(zip((label for label, _, _ in runs),
                       check_study(runs, base, log=lambda line: None)))
    fingerprint = current_fingerprint(base.data_dir)
    # Two sweeps started in the same second get directories of their own.
    sweep_dir = RunDir.create(out_root, f"{dt.datetime.now():%Y%m%d-%H%M%S}-{name}").path
    started, runs_as_jobs, jobs = time.perf_counter(), [], []
    for index, (label, config) in enumerate(configs, start=1):
        log(f"[sweep {name}: run {index}/{len(configs)}] {label}"
            + (f": {config.folds} folds as separate jobs" if config.folds > 1 else ""))
        config.output_dir = str(sweep_dir / "runs")
        config.submissions_dir = str(sweep_dir / "submissions")
        config.run_name = f"{index:02d}-{config.arch}"
        runs_as_jobs.append(Job(label, config))
        jobs.extend(member_jobs(label, config, fingerprint))
    done, fold_errors = {}, {}
    for result in (executor or LocalExecutor()).run(jobs, log=log, description=f"sweep {name}"):
        if not result.job.fold:
            done[result.run_dir] = result
        elif result.error:  # A failed fold fails its run.
            fold_errors.setdefault(result.run_dir, f"{result.job.label}: {result.error}")
    results = [done.get(job.run_dir)
               or (JobResult(job, error=fold_errors[job.run_dir]) if job.run_dir in fold_errors
                   else run_job(job, log))  # A k-fold run, assembled here from its folds.
               for job in runs_as_jobs]
    rows = []
    for result in results:
        label, config, metrics = result.job.label, result.job.config, result.metrics
        if result.error:
            rows.append({"run": label, "arch": config.arch, "error": result.error})
            continue
        rows.append({"run": label, "arch": config.arch, "parameters": metrics["parameters"],
                     "val_accuracy": metrics["val_accuracy"], "val_loss": metrics["val_loss"],
                     "epochs": metrics["epochs_run"], "train_time_s": metrics["train_time_s"],
                     "time_per_epoch_s": metrics["time_per_epoch_s"],
                     "run_dir": str(result.run_dir), "error": ""})
    table = pd.DataFrame(rows)
    write_summary(table, sweep_dir, name, base)
    log(f"[sweep {name}] {len(configs)} runs in {(time.perf_counter() - started) / 60:.1f} min; "
        f"summary in {sweep_dir / 'summary.md'}")
    return table, sweep_dir


def format_markdown(table: pd.DataFrame) -> str:
    header = ("| run | arch | parameters | val accuracy | val loss | epochs | train time (s) | "
              "time/epoch (s) |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for row in table.to_dict("records"):
        if row.get("error"):
            lines.append(f"| {row['run']} | {row['arch']} | failed: {row['error']} | | | | | |")
        else:
            lines.append(f"| {row['run']} | {row['arch']} | {row['parameters']:,} | "
                         f"{_shown(row['val_accuracy'], '{:.2%}')} | "
                         f"{_shown(row['val_loss'], '{:.4f}')} | {row['epochs']} | "
                         f"{row['train_time_s']:.0f} | "
                         f"{_shown(row['time_per_epoch_s'], '{:.1f}')} |")
    return header + "\n".join(lines) + "\n"


def _shown(value, pattern: str) -> str:
    """A number, or a dash for what a run has not got (a full-data run's validation score)."""
    return "–" if value is None or pd.isna(value) else pattern.format(value)


def write_summary(table: pd.DataFrame, sweep_dir: Path, name: str, base: TrainConfig) -> None:
    write_text_atomic(sweep_dir / "summary.csv", table.to_csv(index=False))
    data = base.data_dir or "default data directory"
    write_text_atomic(sweep_dir / "summary.md",
                      f"# Sweep {name}\n\n{dt.date.today().isoformat()}, data: {data}, "
                      f"validation split {base.val_split} (seed {base.seed}).\n\n"
                      + format_markdown(table))
