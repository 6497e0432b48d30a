"""What every kind of run does last: its metrics' common part, its submission and its copy,
its reports, and metrics.json, the file that makes it finished."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from kaggle_digits.evaluation.metrics import accuracy_interval, format_accuracy
from kaggle_digits.evaluation.reports import write_html_report, write_run_report
from kaggle_digits.runs.io import sha256_file
from kaggle_digits.submission.files import publish_submission, write_submission
from kaggle_digits.training.config import package_versions
from kaggle_digits.training.context import RunContext, plot_history
from kaggle_digits.training.fit import MemberResult


def split_record(context: RunContext) -> dict:
    config = context.config
    return {"seed": config.split_seed, "val_split": None if config.folds > 1 else config.val_split,
            "folds": config.folds,
            "val_indices_sha256": sha256_file(context.run.array_path("val_indices"))}


def common_metrics(context: RunContext, result: MemberResult) -> dict:
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


def finish_run(context: RunContext, test_probs: np.ndarray, metrics: dict,
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
