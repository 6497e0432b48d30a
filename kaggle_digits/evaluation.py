"""Scores of predicted class probabilities, computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from kaggle_digits.data import NUM_CLASSES


def classification_scores(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss (the validation figures every run reports)."""
    if probs.ndim != 2 or probs.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"probs must have shape ({len(labels)}, {NUM_CLASSES}). Received: "
                         f"shape={probs.shape}")
    return {
        "accuracy": float(accuracy_score(labels, probs.argmax(axis=1))),
        "log_loss": float(log_loss(labels, probs, labels=list(range(NUM_CLASSES)))),
    }
