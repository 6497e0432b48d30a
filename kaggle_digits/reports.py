"""The evaluation artefacts of a run directory, written at the end of training and by report.py.

Everything is computed from the run's own files (``val_probs.npy``, ``val_labels.npy``,
``val_indices.npy``, ``history.csv``) plus the validation images, which are re-read from the data
directory recorded in ``config.json`` when a report is regenerated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from kaggle_digits.config import TrainConfig
from kaggle_digits.data import NUM_CLASSES, fingerprint_files, find_csv, read_digits_csv
from kaggle_digits.io_utils import load_npy, write_json_atomic, write_text_atomic
from kaggle_digits.plots import (
    most_confused_pairs,
    plot_confusion_matrix,
    plot_error_gallery,
    plot_learning_curves,
)

DIGITS = [str(d) for d in range(NUM_CLASSES)]


def write_run_report(run_dir: str | os.PathLike, val_images: np.ndarray, val_labels: np.ndarray,
                     val_probs: np.ndarray) -> list[Path]:
    """Classification report (text and JSON), confusion matrix, error gallery, learning curves."""
    run_dir = Path(run_dir)
    predicted = val_probs.argmax(axis=1)
    labels = list(range(NUM_CLASSES))
    text = classification_report(val_labels, predicted, labels=labels, target_names=DIGITS,
                                 digits=4, zero_division=0)
    report = classification_report(val_labels, predicted, labels=labels, target_names=DIGITS,
                                   output_dict=True, zero_division=0)
    confusion = confusion_matrix(val_labels, predicted, labels=labels)
    report["confusion_matrix"] = confusion.tolist()
    report["most_confused"] = [{"true": t, "predicted": p, "count": n}
                               for t, p, n in most_confused_pairs(confusion, top=5)]
    written = [
        write_text_atomic(run_dir / "classification_report.txt", text),
        write_json_atomic(run_dir / "classification_report.json", report),
        plot_confusion_matrix(confusion, run_dir / "confusion_matrix.png",
                              title=f"{run_dir.name}: validation confusion matrix"),
        plot_error_gallery(val_images, val_labels, val_probs, run_dir / "errors.png"),
    ]
    if (run_dir / "history.csv").exists():
        accuracy = float(np.mean(predicted == val_labels))
        written.append(plot_learning_curves(
            run_dir / "history.csv", run_dir / "learning_curves.png",
            title=f"{run_dir.name}: validation accuracy {accuracy:.2%} (best validation-loss "
                  f"epoch)"))
    return written


def regenerate_report(run_dir: str | os.PathLike) -> list[Path]:
    """Rebuild a finished run's report from its files and its recorded data directory.

    Raises:
        ValueError: the run is unfinished, or its train.csv is not the one it was trained on.
    """
    run_dir = Path(run_dir)
    missing = [name for name in ("val_probs.npy", "val_labels.npy", "val_indices.npy",
                                 "metrics.json") if not (run_dir / name).exists()]
    if missing:
        raise ValueError(f"{run_dir}: not a finished run (missing {', '.join(missing)})")
    config = TrainConfig.load(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train_path = find_csv(config.data_dir, "train")
    if train_path is None:
        raise ValueError(f"{run_dir}: its data directory {config.data_dir} has no train.csv")
    recorded = metrics["data_fingerprint"].get(train_path.name)
    if fingerprint_files([train_path])[train_path.name] != recorded:
        raise ValueError(f"{train_path} differs from the train.csv this run was trained on "
                         f"(SHA-256 mismatch); refusing to pair its images with the run's labels")
    images, _ = read_digits_csv(train_path, labelled=True)
    val_indices = load_npy(run_dir / "val_indices.npy")
    return write_run_report(run_dir, images[val_indices], load_npy(run_dir / "val_labels.npy"),
                            load_npy(run_dir / "val_probs.npy"))
