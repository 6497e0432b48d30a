"""Pictures of a run, drawn with matplotlib's Agg backend (files only, never a window)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from kaggle_digits.io_utils import atomic_path  # noqa: E402


def plot_learning_curves(history_csv: str | os.PathLike, out_png: str | os.PathLike,
                         title: str = "") -> Path:
    """Accuracy, loss and learning rate per epoch, train against validation."""
    history = pd.read_csv(history_csv)
    epochs = history["epoch"] + 1
    panels = [("accuracy", "Accuracy"), ("loss", "Loss")]
    has_lr = "learning_rate" in history
    fig, axes = plt.subplots(1, len(panels) + has_lr, figsize=(5 * (len(panels) + has_lr), 4))
    for axis, (metric, label) in zip(axes, panels):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axis.set(xlabel="epoch", ylabel=label.lower(), title=label)
        axis.grid(alpha=0.3)
        axis.legend()
    if "val_accuracy" in history:
        best = history["val_accuracy"].idxmax()
        axes[0].annotate(f"max {history['val_accuracy'][best]:.2%}",
                         (epochs[best], history["val_accuracy"][best]),
                         textcoords="offset points", xytext=(0, -14), ha="center")
    if has_lr:
        axes[-1].plot(epochs, history["learning_rate"], marker="o", color="tab:green")
        axes[-1].set(xlabel="epoch", ylabel="learning rate", title="Learning rate", yscale="log")
        axes[-1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(out_png)
