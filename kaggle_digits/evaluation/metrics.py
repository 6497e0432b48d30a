"""Scores of predicted class probabilities, computed with scikit-learn, and their intervals and
paired tests, computed with scipy (both imported when used: the submission ledger, and so
``submit.py``, need only the intervals, and scikit-learn's import was most of such a
command's start)."""

from __future__ import annotations

import numpy as np

from kaggle_digits import UserError
from kaggle_digits.data.load import NUM_CLASSES


def classification_scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss (the validation figures every run reports)."""
    from sklearn.metrics import accuracy_score, log_loss

    if probs.ndim != 2 or probs.shape != (len(labels), NUM_CLASSES):
        raise UserError(f"probs must have shape ({len(labels)}, {NUM_CLASSES}). Received: "
                         f"shape={probs.shape}")
    return {
        "accuracy": float(accuracy_score(labels, probs.argmax(axis=1))),
        "log_loss": float(log_loss(labels, probs, labels=list(range(NUM_CLASSES)))),
    }


def accuracy_interval(correct: int, rows: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of an accuracy of ``correct`` out of ``rows``: on 8,400
    validation rows one image is 0.012 points, so a figure without its interval says little."""
    from scipy.stats import binomtest

    if rows <= 0:
        raise ValueError(f"rows must be positive. Received: rows={rows}")
    interval = binomtest(int(correct), int(rows)).proportion_ci(confidence, method="exact")
    return float(interval.low), float(interval.high)


def format_accuracy(accuracy: float, rows: int) -> str:
    """``99.7143% (95% CI 99.58-99.82%, 8,400 rows)``."""
    low, high = accuracy_interval(round(accuracy * rows), rows)
    return f"{accuracy:.4%} (95% CI {low:.2%}-{high:.2%}, {rows:,} rows)"


def mcnemar_exact(first_correct: np.ndarray, second_correct: np.ndarray) -> dict:
    """McNemar's exact test of two classifiers on the same rows: only the rows where exactly one
    of them is right carry information, and under "no difference" each such row is a coin flip.

    Returns ``{"only_first": b, "only_second": c, "p_value": p}`` (two-sided).
    """
    from scipy.stats import binomtest

    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise UserError(f"both runs must be scored on the same rows. Received: "
                         f"{first.shape} and {second.shape}")
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(~first & second))
    discordant = only_first + only_second
    p_value = 1.0 if discordant == 0 else float(binomtest(only_first, discordant).pvalue)
    return {"only_first": only_first, "only_second": only_second, "p_value": p_value}
