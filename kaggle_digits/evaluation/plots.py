"""Pictures of a run, drawn with matplotlib's Agg backend (files only, never a window)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from kaggle_digits.runs.io import atomic_path  # noqa: E402


def plot_learning_curves(history_csv: str | os.PathLike, out_png: str | os.PathLike,
                         title: str = "") -> Path:
    """Accuracy, loss and learning rate per epoch, train against validation."""
    history = pd.read_csv(history_csv)
    # Keras' CSVLogger adds empty val_ columns to runs without validation.
    history = history.dropna(axis="columns", how="all")
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
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # Epochs, not 2.5 of one.
    if "val_accuracy" in history:
        best = history["val_accuracy"].idxmax()
        axes[0].annotate(f"max {history['val_accuracy'][best]:.2%}",
                         (epochs[best], history["val_accuracy"][best]),
                         textcoords="offset points", xytext=(0, -14), ha="center")
    if has_lr:
        axes[-1].plot(epochs, history["learning_rate"], marker="o", color="tab:green")
        axes[-1].set(xlabel="epoch", ylabel="learning rate", title="Learning rate", yscale="log")
        axes[-1].minorticks_off()  # Unlabelled log-scale minor ticks: 12% of this picture's draw.
        axes[-1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    # Fixed margins: tight_layout re-measures every label for a layout that never changes.
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.13, top=0.84 if title else 0.91,
                        wspace=0.3)
    return save_figure(fig, out_png)


def most_confused_pairs(confusion, top: int = 3) -> list[tuple[int, int, int]]:
    """``(true, predicted, count)`` of the largest off-diagonal cells, largest first."""
    cells = [(int(confusion[t, p]), t, p) for t in range(len(confusion))
             for p in range(len(confusion)) if t != p and confusion[t, p] > 0]
    return [(t, p, n) for n, t, p in sorted(cells, reverse=True)[:top]]


def plot_confusion_matrix(confusion, out_png: str | os.PathLike, title: str = "") -> Path:
    """Counts per (true, predicted) digit, with the most confused pairs named under the plot."""
    import numpy as np

    fig, axis = plt.subplots(figsize=(7.5, 7))
    shown = np.where(np.eye(len(confusion), dtype=bool), 0, confusion)  # Colour errors only.
    axis.imshow(shown, cmap="Reds")
    for true in range(len(confusion)):
        for predicted in range(len(confusion)):
            count = int(confusion[true, predicted])
            if count:
                axis.text(predicted, true, str(count), ha="center", va="center", fontsize=8,
                          color="black" if true != predicted else "tab:blue")
    axis.set(xticks=range(len(confusion)), yticks=range(len(confusion)),
             xlabel="predicted digit", ylabel="true digit", title=title or "Confusion matrix")
    pairs = most_confused_pairs(confusion)
    if pairs:
        fig.text(0.5, 0.01, "most confused: " + ", ".join(
            f"{t} as {p} ({n}x)" for t, p, n in pairs), ha="center")
    # Fixed margins, as for the curves: tight_layout measured every tick label again, most of
    # this picture's time, and every run draws it.
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.1, top=0.94)
    return save_figure(fig, out_png)


def plot_error_gallery(images, labels, probs, out_png: str | os.PathLike, count: int = 24,
                       columns: int = 8) -> Path:
    """The most confident validation mistakes: image, true digit, prediction and its
    probability."""
    import numpy as np

    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:count]
    captions = [f"true {labels[index]}, pred {predicted[index]}\n"
                f"{probs[index, predicted[index]]:.0%}" for index in worst]
    return plot_gallery(images[worst], captions,
                        f"Worst validation mistakes ({len(worst)} of {len(wrong)} errors)",
                        out_png, columns)


def plot_gallery(images, captions: list[str], title: str, out_png: str | os.PathLike,
                 columns: int = 8) -> Path:
    """Digits with a two-line caption each, in rows of ``columns``.

    One mosaic image in one axes with text captions: a grid of axes took three times as long to
    draw, and every run draws such a picture.
    """
    import numpy as np

    rows = max(1, -(-len(images) // columns))
    cell_w, cell_h, caption = 36, 50, 18  # Pixels of the mosaic: a digit, its margins and caption.
    mosaic = np.zeros((rows * cell_h, columns * cell_w), dtype=np.float32)
    height = rows * 1.7 + 0.4  # Inches: the title line, then per row a picture and two lines.
    fig = plt.figure(figsize=(columns * 1.4, height))
    axis = fig.add_axes((0.01, 0.1 / height, 0.98, 1 - 0.55 / height))
    for slot, (image, text) in enumerate(zip(images, captions)):
        top, left = (slot // columns) * cell_h + caption, (slot % columns) * cell_w + 4
        mosaic[top:top + 28, left:left + 28] = image.reshape(28, 28)
        axis.text(left + 14, top - 2, text, ha="center", va="bottom", fontsize=8)
    axis.imshow(mosaic, cmap="gray_r", aspect="auto", interpolation="nearest")
    axis.axis("off")
    fig.suptitle(title)
    return save_figure(fig, out_png)


def save_figure(fig, out_png) -> Path:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return Path(out_png)
