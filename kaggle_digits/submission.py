"""Write and check Kaggle submission files: ``ImageId,Label``, ImageId 1..N in test.csv order.

A submission costs one of a competitor's daily attempts, so it is checked before it is written and
``check_submission_file`` re-checks any file (ours or hand-made) before it is uploaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits.data import COMPETITION_TEST_ROWS, NUM_CLASSES
from kaggle_digits.io_utils import write_text_atomic

SUBMISSION_COLUMNS = ["ImageId", "Label"]


class SubmissionError(ValueError):
    """A submission that Kaggle would reject or score wrongly."""


def prediction_problems(image_ids: np.ndarray, labels: np.ndarray,
                        expected_rows: int | None) -> list[str]:
    """Everything wrong with a submission's columns, first problem rows named."""
    problems = []
    if expected_rows is not None and len(labels) != expected_rows:
        problems.append(f"has {len(labels)} rows, expected {expected_rows}")
    expected_ids = np.arange(1, len(image_ids) + 1)
    if not np.array_equal(image_ids, expected_ids):
        bad = int(np.flatnonzero(image_ids != expected_ids)[0])
        duplicates = len(image_ids) - len(np.unique(image_ids))
        detail = f" ({duplicates} duplicate ids)" if duplicates else ""
        problems.append(f"ImageId must run 1..{len(image_ids)} in order; line {bad + 2} has "
                        f"{image_ids[bad]}, expected {bad + 1}{detail}")
    bad_labels = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if len(bad_labels):
        row = int(bad_labels[0])
        problems.append(f"{len(bad_labels)} label(s) outside 0-9, first on line {row + 2}: "
                        f"{labels[row]}")
    return problems


def write_submission(labels: np.ndarray, path: str | os.PathLike,
                     expected_rows: int | None = None) -> Path:
    """Validate predicted digits and write them atomically as a submission CSV.

    Args:
        labels: predicted digit per test row, in test.csv order.
        path: output CSV path.
        expected_rows: number of rows in the test file the predictions are for.

    Raises:
        SubmissionError: if the predictions do not make a valid submission (nothing is written).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SubmissionError(f"labels must be a 1-D integer array. Received: shape={labels.shape}, "
                              f"dtype={labels.dtype}")
    image_ids = np.arange(1, len(labels) + 1)
    problems = prediction_problems(image_ids, labels, expected_rows)
    if problems:
        raise SubmissionError(f"{path}: " + "; ".join(problems))
    frame = pd.DataFrame({"ImageId": image_ids, "Label": labels})
    return write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def check_submission_file(path: str | os.PathLike, expected_rows: int | None = None
                          ) -> list[str]:
    """Return the problems of a submission file on disk (empty when it is valid)."""
    path = Path(path)
    if not path.is_file():
        return [f"{path}: file not found"]
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return [f"{path}: file is empty"]
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        return [f"{path}: not a readable CSV ({str(exc).splitlines()[0]})"]
    columns = [str(c) for c in frame.columns]
    if columns != SUBMISSION_COLUMNS:
        return [f"{path}: header must be 'ImageId,Label', found {','.join(columns)!r}"]
    for column in SUBMISSION_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        invalid = values.isna() | (values % 1 != 0)
        if invalid.any():
            row = int(np.flatnonzero(invalid.to_numpy())[0])
            return [f"{path}: line {row + 2}, column '{column}': "
                    f"{frame[column].iloc[row]!r} is not an integer"]
    image_ids = frame["ImageId"].to_numpy(dtype=np.int64)
    labels = frame["Label"].to_numpy(dtype=np.int64)
    return [f"{path}: {problem}" for problem in prediction_problems(image_ids, labels, expected_rows)]


def verdict(path: str | os.PathLike, test_rows: int | None) -> tuple[bool, list[str]]:
    """Check a file against its test file's row count and the competition's 28,000 rows.

    Returns ``(ok, lines)``: ``ok`` means Kaggle will accept and score the file.
    """
    lines = []
    problems = check_submission_file(path)
    if problems:
        return False, [f"INVALID: {p}" for p in problems]
    rows = len(pd.read_csv(path, usecols=["ImageId"]))
    ok = True
    if test_rows is not None:
        if rows == test_rows:
            lines.append(f"ok: {rows} rows, one per row of the test file")
        else:
            ok = False
            lines.append(f"INVALID: {rows} rows, but the test file has {test_rows}")
    if rows == COMPETITION_TEST_ROWS:
        lines.append(f"ok: {rows} rows, as the competition expects; ImageId 1..{rows}; labels 0-9")
    else:
        ok = False
        lines.append(f"INVALID for Kaggle: {rows} rows, the competition expects "
                     f"{COMPETITION_TEST_ROWS} (was this made on the bundled sample?)")
    return ok, lines
