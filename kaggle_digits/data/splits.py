"""Which rows a member trains and validates on: the stratified split, the k folds, and the
pseudo-labelled test rows a second recipe round adds to the training rows (never to validation).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kaggle_digits import UserError
from kaggle_digits.data.load import NUM_CLASSES, DigitData


def encode_pseudo_labels(labels: np.ndarray, keep: np.ndarray) -> str:
    """One character per test row: its pseudo-label digit where ``keep``, else ``.``."""
    return "".join(str(int(label)) if kept else "." for label, kept in zip(labels, keep))


def check_pseudo_labels(data: DigitData, pseudo_labels: str) -> None:
    """Refuse pseudo-labels made for a test.csv with another number of rows."""
    if pseudo_labels and len(pseudo_labels) != len(data.test_images):
        raise UserError(f"{data.test_path}: the pseudo-labels are for {len(pseudo_labels)} test "
                         f"rows, this test.csv has {len(data.test_images)}")


def with_pseudo_labels(data: DigitData, pseudo_labels: str) -> tuple[DigitData, np.ndarray]:
    """``data`` with the pseudo-labelled test rows appended to its labelled rows.

    Returns the extended data and the indices of the appended rows, which callers add to the
    training rows of a split or fold; validation rows are indices below ``len(train_labels)``
    and stay exactly the labelled rows they were.

    Raises:
        ValueError: the labels were made for a test.csv with another number of rows.
    """
    check_pseudo_labels(data, pseudo_labels)
    if not pseudo_labels:
        return data, np.empty(0, dtype=np.int64)
    codes = np.frombuffer(pseudo_labels.encode("ascii"), dtype=np.uint8)
    rows = np.flatnonzero(codes != ord("."))
    labels = (codes[rows] - ord("0")).astype(data.train_labels.dtype)
    extended = replace(data, train_images=np.concatenate([data.train_images,
                                                          data.test_images[rows]]),
                       train_labels=np.concatenate([data.train_labels, labels]))
    return extended, np.arange(len(data.train_labels), len(extended.train_labels))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/validation indices (sorted), the same for the same labels and
    seed."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1. Received: "
                        f"val_fraction={val_fraction}")
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    present = counts[counts > 0]
    if present.min() < 2:
        rare = [str(d) for d in np.flatnonzero((counts > 0) & (counts < 2))]
        raise UserError(f"cannot stratify: digit(s) {', '.join(rare)} appear only once")
    indices = np.arange(len(labels))
    train_idx, val_idx = train_test_split(indices, test_size=val_fraction, stratify=labels,
                                          random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def stratified_folds(labels: np.ndarray, folds: int, seed: int
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified k-fold ``(train_indices, val_indices)`` pairs; every row validated once."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if counts[counts > 0].min() < folds:
        raise UserError(f"cannot make {folds} stratified folds: the rarest digit has only "
                         f"{counts[counts > 0].min()} rows")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(train), np.sort(val))
            for train, val in splitter.split(np.zeros(len(labels)), labels)]
