"""A first look at the data (and at a submission's predictions) before training on it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits.data.load import NUM_CLASSES, DigitData
from kaggle_digits.evaluation.plots import plt, save_figure
from kaggle_digits.submission.files import SubmissionError, check_submission_file


def plot_sample_grid(images: np.ndarray, labels: np.ndarray, out_png: str | os.PathLike,
                     per_digit: int = 10, seed: int = 0) -> Path:
    """One row per digit with ``per_digit`` random examples, the row labelled with its digit.

    One mosaic in one axes, as ``plot_gallery`` draws its pictures: a grid of a hundred axes
    took most of ``explore``'s time.
    """
    rng = np.random.default_rng(seed)
    mosaic = np.zeros((NUM_CLASSES * 28, per_digit * 28), dtype=np.float32)
    for digit in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == digit)
        chosen = (rng.choice(rows, size=min(per_digit, len(rows)), replace=False)
                  if len(rows) else [])
        for column, row in enumerate(chosen):
            mosaic[digit * 28:(digit + 1) * 28, column * 28:(column + 1) * 28] = \
                images[row].reshape(28, 28)
    fig, axis = plt.subplots(figsize=(per_digit * 0.9, NUM_CLASSES))
    axis.imshow(mosaic, cmap="gray_r", interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks(np.arange(NUM_CLASSES) * 28 + 13.5, [str(d) for d in range(NUM_CLASSES)])
    axis.tick_params(left=False)
    for side in axis.spines.values():
        side.set_visible(False)
    fig.suptitle(f"Training digits: {per_digit} random examples per label ({len(labels):,} rows)")
    fig.tight_layout()
    return save_figure(fig, out_png)


def plot_class_distribution(train_labels: np.ndarray, out_png: str | os.PathLike,
                            predicted: np.ndarray | None = None,
                            predicted_name: str = "submission") -> Path:
    """Share of each digit in train, beside a submission's predicted shares when given."""
    digits = np.arange(NUM_CLASSES)
    train_share = np.bincount(train_labels, minlength=NUM_CLASSES) / max(len(train_labels), 1)
    width = 0.4 if predicted is not None else 0.8
    fig, axis = plt.subplots(figsize=(8, 4.5))
    offset = -width / 2 if predicted is not None else 0.0
    axis.bar(digits + offset, train_share * 100, width=width,
             label=f"train labels ({len(train_labels):,})")
    if predicted is not None:
        predicted_share = np.bincount(predicted, minlength=NUM_CLASSES) / max(len(predicted), 1)
        axis.bar(digits + width / 2, predicted_share * 100, width=width,
                 label=f"{predicted_name} predictions ({len(predicted):,})")
    axis.set(xticks=digits, xlabel="digit", ylabel="share of rows (%)",
             title="Class distribution")
    axis.set_ylim(0, axis.get_ylim()[1] * 1.25)  # Room for the legend above the bars.
    axis.grid(axis="y", alpha=0.3)
    axis.legend(loc="upper right")
    fig.tight_layout()
    return save_figure(fig, out_png)


def read_submission_labels(path: str | os.PathLike) -> np.ndarray:
    """The Label column of a valid submission file.

    Raises:
        SubmissionError: the file is not a valid submission (the first problem found).
    """
    problems = check_submission_file(path)
    if problems:
        raise SubmissionError(problems[0])
    return pd.read_csv(path, usecols=["Label"])["Label"].to_numpy(dtype=np.int64)


def explore(data: DigitData, out_dir: str | os.PathLike, predicted: np.ndarray | None = None,
            predicted_name: str = "submission") -> list[Path]:
    """Sample grid and class distribution PNGs in ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_sample_grid(data.train_images, data.train_labels, out_dir / "sample_digits.png"),
        plot_class_distribution(data.train_labels, out_dir / "class_distribution.png",
                                predicted=predicted, predicted_name=predicted_name),
    ]


def prediction_shares(labels: np.ndarray) -> str:
    shares = np.bincount(labels, minlength=NUM_CLASSES) / max(len(labels), 1)
    return ", ".join(f"{digit}:{share:.1%}" for digit, share in enumerate(shares))
