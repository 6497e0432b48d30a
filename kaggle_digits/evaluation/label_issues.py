"""Labelled rows whose given label is likely wrong, found by confident learning (Northcutt, Jiang
and Chuang 2021, "Confident Learning: Estimating Uncertainty in Dataset Labels") with cleanlab,
from probabilities of models that never trained on the rows they score (a k-fold run's
out-of-fold predictions, or a holdout run's validation rows).

Label smoothing leaves a model's probabilities too soft for confident learning (its per-class
thresholds then sit below the mistakes), so they are calibrated first by temperature scaling
(Guo et al. 2017, "On Calibration of Modern Neural Networks"): one temperature, fitted on the
same rows by minimising their log loss.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from kaggle_digits import UserError
from kaggle_digits.data.load import find_csv, fingerprint_files, read_digits_csv
from kaggle_digits.runs.io import write_text_atomic
from kaggle_digits.runs.rundir import DataMismatch, RunDir

GALLERY_MAX = 48


@dataclass(frozen=True)
class LabelIssues:
    """Rows (indices into train.csv's data rows) ranked most likely mislabelled first."""

    rows: np.ndarray
    given: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray  # The calibrated probability of the predicted digit.
    temperature: float
    scored_rows: int


def calibrate(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float]:
    """``probs`` raised to ``1 / T`` and renormalised (a softmax of log-probabilities / T), with
    the ``T`` that minimises the log loss of ``labels``."""
    logits = np.log(np.clip(probs, 1e-12, 1.0))

    def log_loss(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)),
                                                              labels].mean()

    best = minimize_scalar(log_loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    temperature = float(np.exp(best.x))
    return np.exp(log_softmax(logits / temperature, axis=1)), temperature


def find_label_issues(labels: np.ndarray, probs: np.ndarray,
                      rows: np.ndarray | None = None) -> LabelIssues:
    """Confident learning on calibrated ``probs`` of ``labels`` (``rows``: which train.csv rows
    they are; all, in order, by default)."""
    from cleanlab.filter import find_label_issues as cleanlab_issues

    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(labels)) if rows is None else np.asarray(rows)
    calibrated, temperature = calibrate(probs, labels)
    ranked = cleanlab_issues(labels, calibrated, return_indices_ranked_by="self_confidence")
    predicted = calibrated.argmax(axis=1)
    return LabelIssues(rows[ranked], labels[ranked], predicted[ranked],
                       calibrated[ranked, predicted[ranked]], temperature, len(labels))


def run_label_issues(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None
                     ) -> tuple[LabelIssues, Path, Path]:
    """A finished run's label issues, from its held-out probabilities: ``label_issues.csv``
    (row of train.csv counted from 0, its line in the file, given and predicted digit,
    calibrated confidence, the SHA-256 of the train.csv it names rows of) and
    ``label_issues.png`` (a gallery of the most likely) in the run
    directory.

    Raises:
        UserError: no held-out predictions (a full-data run), or its train.csv changed.
    """
    from kaggle_digits.evaluation.plots import plot_gallery

    run = RunDir(run_dir)
    run.require_finished()
    if not (run.has_array("val_probs") and run.has_array("val_indices")):
        raise UserError(f"{run}: no held-out predictions (a full-data run): label issues need "
                        f"probabilities from models that never saw the rows")
    probs, labels = run.load_array("val_probs"), run.load_array("val_labels")
    rows = run.load_array("val_indices")
    issues = find_label_issues(labels, probs, rows)
    train_csv = find_csv(data_dir or run.read_config().with_data_dir().data_dir, "train")
    if train_csv is None:
        raise UserError(f"{run}: its data directory has no train.csv to draw the rows from")
    fingerprint = fingerprint_files([train_csv])
    try:
        run.check_data(fingerprint, names=(train_csv.name,))
    except DataMismatch as exc:
        raise UserError(f"{exc}; refusing to draw other images for its rows") from None
    table = pd.DataFrame({"row": issues.rows, "line": issues.rows + 2, "given": issues.given,
                          "predicted": issues.predicted,
                          "confidence": np.round(issues.confidence, 4),
                          "train_sha256": fingerprint[train_csv.name]})
    csv_path = write_text_atomic(run.report_path("label_issues_table"),
                                 table.to_csv(index=False))
    images, _ = read_digits_csv(train_csv, labelled=True)
    shown = issues.rows[:GALLERY_MAX]
    captions = [f"row {row}: given {given}\nmodel {predicted} {confidence:.0%}"
                for row, given, predicted, confidence in
                zip(shown, issues.given, issues.predicted, issues.confidence)]
    png = plot_gallery(images[shown], captions,
                       f"Likely label issues: {len(issues.rows)} of {issues.scored_rows} rows "
                       f"(confident learning, temperature {issues.temperature:.2f})",
                       run.report_path("label_issues"))
    return issues, csv_path, png


def read_excluded_rows(path: str | os.PathLike, data_dir: str | os.PathLike) -> list[int]:
    """The train.csv rows (counted from 0) in the ``row`` column of a CSV such as
    ``label_issues.csv``, checked where they are read, and against the train.csv of
    ``data_dir`` they will be left out of: a file that records the train.csv it was made on
    (``train_sha256``) must name this one, and a ``given`` column must hold this train.csv's
    labels of those rows (row numbers of another file would leave out other digits).

    Raises:
        UserError: naming the file, and the line and column of a value that is wrong.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV of rows to exclude "
                        f"({getattr(exc, 'strerror', None) or exc})") from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UserError(f"{path}, line 1: column {repeated[0]!r} appears more than once")
    if "row" not in header:
        raise UserError(f"{path}: no 'row' column (the train.csv rows to exclude, counted from "
                        f"0, as label_issues.csv has them)")
    rows = [_whole_number(path, line, "row", text)
            for line, text in enumerate(table["row"], start=2)]
    train_csv = find_csv(data_dir, "train")
    if train_csv is None or not rows:
        return sorted(set(rows))
    made_on = {text for text in table.get("train_sha256", []) if text}
    if made_on and made_on != set(fingerprint_files([train_csv]).values()):
        raise UserError(f"{path}: made on another train.csv (its train_sha256 is not the "
                        f"SHA-256 of {train_csv}); its row numbers would name other digits")
    if "given" in header and not made_on:
        _, labels = read_digits_csv(train_csv, labelled=True)
        for line, (row, text) in enumerate(zip(rows, table["given"]), start=2):
            given = _whole_number(path, line, "given", text)
            if row < len(labels) and labels[row] != given:
                raise UserError(f"{path}, line {line}, column 'given': row {row} is a "
                                f"{labels[row]} in {train_csv}, not a {given}: the file was made "
                                f"on another train.csv")
    return sorted(set(rows))


def _whole_number(path: Path, line: int, column: str, text) -> int:
    """A non-negative whole number written in ASCII digits (``int`` takes other scripts' digits,
    ``str.isdigit`` superscripts and circled digits that ``int`` refuses)."""
    text = text.strip() if isinstance(text, str) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise UserError(f"{path}, line {line}, column {column!r}: {text!r} is not a "
                        f"{'row number' if column == 'row' else 'digit'}")
    return int(text)
