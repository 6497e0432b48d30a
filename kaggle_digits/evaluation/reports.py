"""The evaluation artefacts of a run directory, written at the end of training and by report.py.

Everything is computed from the run's own files (validation probabilities, labels and row
indices, the training history) plus the validation images, which are re-read from the data
directory recorded in the run's config when a report is regenerated.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from kaggle_digits import UserError
from kaggle_digits.data.load import NUM_CLASSES, find_csv, fingerprint_files, read_digits_csv
from kaggle_digits.evaluation.metrics import format_accuracy
from kaggle_digits.evaluation.plots import (
    most_confused_pairs,
    plot_confusion_matrix,
    plot_error_gallery,
    plot_learning_curves,
)
from kaggle_digits.runs.io import parse_json, write_json_atomic, write_text_atomic
from kaggle_digits.runs.rundir import DataMismatch, RunDir

DIGITS = [str(d) for d in range(NUM_CLASSES)]


def write_run_report(run_dir: str | os.PathLike, val_images: np.ndarray, val_labels: np.ndarray,
                     val_probs: np.ndarray, metrics: dict | None = None) -> list[Path]:
    """Classification report (text and JSON), confusion matrix, error gallery, learning curves.

    ``metrics`` is given by a run that writes its metrics.json last (its mark of completion).
    """
    run = RunDir(run_dir)
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
        write_text_atomic(run.report_path("classification_text"), text),
        write_json_atomic(run.report_path("classification_json"), report),
        plot_confusion_matrix(confusion, run.report_path("confusion_matrix"),
                              title=f"{run.name}: validation confusion matrix"),
        plot_error_gallery(val_images, val_labels, val_probs, run.report_path("errors")),
    ]
    if run.history_path.exists():
        accuracy = float(np.mean(predicted == val_labels))
        written.append(plot_learning_curves(
            run.history_path, run.report_path("learning_curves"),
            title=f"{run.name}: validation accuracy {accuracy:.2%} (best validation-loss "
                  f"epoch)"))
    written.append(write_html_report(run.path, metrics))
    return written


REPORT_PICTURES = (("learning_curves", "Learning curves"),
                   ("confusion_matrix", "Confusion matrix (validation)"),
                   ("errors", "Worst validation mistakes"),
                   ("label_issues", "Likely label issues (report.py --label-issues)"))
HEADLINE_METRICS = ("val_accuracy", "val_loss", "epochs_run", "train_time_s", "time_per_epoch_s",
                    "predict_test_time_s", "total_time_s", "parameters", "train_rows", "val_rows",
                    "test_rows", "is_sample", "finished", "submission")


def _read_json(path: Path) -> dict:
    try:
        return parse_json(path.read_text())
    except (OSError, ValueError):
        return {}


def _table(rows, header=None) -> str:
    head = ("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"
            if header else "")
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table>{head}{body}</table>"


def write_html_report(run_dir: str | os.PathLike, metrics: dict | None = None) -> Path:
    """``report.html``: config, metrics, per-digit scores and every picture, in one file.

    Pictures are embedded as base64 so the page can be mailed or attached on its own.
    """
    run = RunDir(run_dir)
    config = _read_json(run.config_path)
    metrics = metrics if metrics is not None else _read_json(run.metrics_path)
    scores = _read_json(run.report_path("classification_json"))
    accuracy = metrics.get("val_accuracy", scores.get("accuracy"))
    title = f"{config.get('arch', 'run')}: {run.name}"
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if accuracy is not None:
        # The same words as the command line: the interval and the rows it was measured on.
        rows = metrics.get("val_rows") or scores.get("macro avg", {}).get("support")
        kind = "Out-of-fold" if metrics.get("kind") == "kfold" else "Validation"
        shown = (html.escape(format_accuracy(accuracy, int(rows))) if rows
                 else f"{accuracy:.4%}")
        parts.append(f"<p class=headline>{kind} accuracy <b>{shown}</b>"
                     + (f", loss {metrics['val_loss']:.4f}" if "val_loss" in metrics else "")
                     + "</p>")
    if metrics.get("is_sample"):
        parts.append("<p class=warn>Trained on the bundled sample, not the competition data.</p>")
    if metrics:
        parts.append("<h2>Metrics</h2>" + _table(
            [(key, _format_value(metrics[key])) for key in HEADLINE_METRICS if key in metrics]))
    if scores:
        digits = [key for key in DIGITS if key in scores]
        rows = [(d, f"{scores[d]['precision']:.4f}", f"{scores[d]['recall']:.4f}",
                 f"{scores[d]['f1-score']:.4f}", int(scores[d]["support"])) for d in digits]
        rows += [(name, f"{scores[name]['precision']:.4f}", f"{scores[name]['recall']:.4f}",
                  f"{scores[name]['f1-score']:.4f}", int(scores[name]["support"]))
                 for name in ("macro avg", "weighted avg") if name in scores]
        parts.append("<h2>Per-digit scores (validation)</h2>"
                     + _table(rows, ("digit", "precision", "recall", "F1", "support")))
        confused = scores.get("most_confused") or []
        if confused:
            parts.append("<p>Most confused: " + html.escape(", ".join(
                f"{c['true']} as {c['predicted']} ({c['count']}x)" for c in confused)) + "</p>")
    for kind, caption in REPORT_PICTURES:
        picture = run.report_path(kind)
        if picture.exists():
            encoded = base64.b64encode(picture.read_bytes()).decode("ascii")
            parts.append(f"<h2>{html.escape(caption)}</h2><img alt=\"{picture.name}\" "
                         f"src=\"data:image/png;base64,{encoded}\">")
    if config:
        parts.append("<h2>Config</h2>" + _table(
            [(key, _format_value(value)) for key, value in config.items()]))
    if metrics.get("versions"):
        parts.append("<h2>Versions</h2>" + _table(sorted(metrics["versions"].items())))
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{REPORT_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    return write_text_atomic(run.report_path("html"), page)


REPORT_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
              "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
              "padding:2px 8px;text-align:left}img{max-width:100%}.headline{font-size:1.4em}"
              ".warn{color:#a00;font-weight:bold}")


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def regenerate_report(run_dir: str | os.PathLike,
                      data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Rebuild a finished run's report from its files and its data directory: ``data_dir``
    (a run moved to another machine), else the one it recorded (else the default, for runs
    that recorded none).

    Raises:
        ValueError: the run is unfinished, or its train.csv is not the one it was trained on.
    """
    run = RunDir(run_dir)
    run.require_finished()
    missing = [kind for kind in ("val_probs", "val_labels", "val_indices")
               if not run.has_array(kind)]
    if missing:
        raise UserError(f"{run}: no validation predictions ({', '.join(missing)}): a "
                         f"full-data run has no validation report")
    data_dir = data_dir or run.read_config().with_data_dir().data_dir
    train_path = find_csv(data_dir, "train")
    if train_path is None:
        raise UserError(f"{run}: its data directory {data_dir} has no train.csv")
    try:
        run.check_data(fingerprint_files([train_path]), names=(train_path.name,))
    except DataMismatch:
        raise UserError(f"{train_path} differs from the train.csv this run was trained on "
                         f"(SHA-256 mismatch); refusing to pair its images with the run's "
                         f"labels") from None
    images, _ = read_digits_csv(train_path, labelled=True)
    val_indices = run.load_array("val_indices")
    return write_run_report(run.path, images[val_indices], run.load_array("val_labels"),
                            run.load_array("val_probs"))
