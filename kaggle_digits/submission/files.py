"""Write and check Kaggle submission files: ``ImageId,Label``, ImageId 1..N in test.csv order.

A submission costs one of a competitor's daily attempts, so it is checked before it is written and
``check_submission_file`` re-checks any file (ours or hand-made) before it is uploaded.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits import UserError
from kaggle_digits.data.load import COMPETITION_TEST_ROWS, NUM_CLASSES
from kaggle_digits.runs.io import (
    atomic_path,
    parse_json,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from kaggle_digits.runs.locks import directory_lock
from kaggle_digits.runs.rundir import RunDir

# Writing a submission and its record takes well under a second; a second writer of the same
# path waits this long for the first.
OUTPUT_LOCK_WAIT_S = 120.0

SUBMISSION_COLUMNS = ["ImageId", "Label"]
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")


class SubmissionError(UserError):
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
        raise SubmissionError(f"labels must be a 1-D integer array. Received: "
                              f"shape={labels.shape}, dtype={labels.dtype}")
    image_ids = np.arange(1, len(labels) + 1)
    problems = prediction_problems(image_ids, labels, expected_rows)
    if problems:
        raise SubmissionError(f"{path}: " + "; ".join(problems))
    frame = pd.DataFrame({"ImageId": image_ids, "Label": labels})
    return write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def write_submission_with_record(labels: np.ndarray, path: str | os.PathLike, record: dict,
                                 expected_rows: int | None = None) -> tuple[Path, Path]:
    """Write a submission and its record as one, under the lock of the output path: two
    commands writing the same ``--out`` at once wait for each other, and the record names the
    SHA-256 of the file this call wrote (hashed after it was written, under the lock, never of
    another command's file).

    Returns:
        ``(submission, record)`` paths.

    Raises:
        SubmissionError: a path that is not a .csv, or predictions that are no submission
            (nothing is written).
    """
    record_path(path)  # Refused before the CSV is written.

    def say_who(holder: str) -> None:
        print(f"waiting for {path}: process {holder} is writing it", file=sys.stderr,
              flush=True)

    with directory_lock(path, wait_s=OUTPUT_LOCK_WAIT_S, on_wait=say_who):
        submission = write_submission(labels, path, expected_rows)
        written = {**record, "submission_sha256": sha256_file(submission)}
        return submission, write_record(submission, written)


_MAX_DIGITS = 18  # Anything longer does not fit an int64, and no image id is near that.


def read_submission(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A submission's ``(image_ids, labels)``, read as strictly as Kaggle's scorer reads it.

    Every cell must be a plain whole number (``7``, not ``7.0``, `` 7`` or ``+7``): a file that
    only pandas would accept costs a day's submission when Kaggle refuses it. Blank lines at the
    end are ignored; any other blank line is refused with its line number.

    Raises:
        SubmissionError: the first problem, naming the file, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw.startswith((b"\x1f\x8b", b"PK\x03\x04")):
        raise SubmissionError(f"{path}: is a compressed archive; check and submit the CSV itself")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SubmissionError(f"{path}: line {line}: byte 0x{raw[exc.start]:02X} is not UTF-8 "
                              f"text") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SubmissionError(f"{path}: file is empty")
    if lines[0] != ",".join(SUBMISSION_COLUMNS):
        raise SubmissionError(f"{path}: line 1: header must be 'ImageId,Label', found "
                              f"{lines[0]!r}")
    if len(lines) == 1:
        raise SubmissionError(f"{path}: header only, no rows")
    values = np.zeros((len(lines) - 1, 2), dtype=np.int64)
    for number, cells in enumerate(csv.reader(lines[1:]), start=2):
        if not cells:
            raise SubmissionError(f"{path}: line {number} is blank")
        if len(cells) != 2:
            raise SubmissionError(f"{path}: line {number} has {len(cells)} fields, expected 2 "
                                  f"(ImageId,Label)")
        for column, cell in zip(SUBMISSION_COLUMNS, cells):
            if not _PLAIN_INTEGER.fullmatch(cell):
                raise SubmissionError(f"{path}: line {number}, column '{column}': {cell!r} is "
                                      f"not an integer (Kaggle reads plain whole numbers: 7, "
                                      f"not 7.0)")
            if len(cell.lstrip("-")) > _MAX_DIGITS:
                raise SubmissionError(f"{path}: line {number}, column '{column}': {cell[:20]}... "
                                      f"is too large to be an image id or a digit")
        values[number - 2] = [int(cells[0]), int(cells[1])]
    return values[:, 0], values[:, 1]


def check_submission_file(path: str | os.PathLike, expected_rows: int | None = None
                          ) -> list[str]:
    """Return the problems of a submission file on disk (empty when it is valid)."""
    try:
        image_ids, labels = read_submission(path)
    except SubmissionError as exc:
        return [str(exc)]
    return [f"{path}: {problem}"
            for problem in prediction_problems(image_ids, labels, expected_rows)]


def verdict(path: str | os.PathLike, test_rows: int | None) -> tuple[bool, list[str]]:
    """Check a file against its test file's row count and the competition's 28,000 rows.

    Returns ``(ok, lines)``: ``ok`` means Kaggle will accept and score the file.
    """
    lines = []
    try:
        image_ids, labels = read_submission(path)
    except SubmissionError as exc:
        return False, [f"INVALID: {exc}"]
    problems = prediction_problems(image_ids, labels, None)
    if problems:
        return False, [f"INVALID: {path}: {problem}" for problem in problems]
    rows = len(image_ids)
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


# The record beside a submission ------------------------------------------------------------
# Every writer of a submission (a training run, an ensemble, predict.py) puts NAME.json beside
# NAME.csv: which run or ensemble made it, for which data (the SHA-256 fingerprint of train.csv
# and test.csv) and the CSV's own SHA-256, so that submit.py can tell an edited file from the
# one the toolkit wrote. These two functions are the only ones that know where it lives.

def record_path(csv_path: str | os.PathLike) -> Path:
    """Where the record of the submission ``csv_path`` lives (NAME.json beside NAME.csv)."""
    csv_path = Path(csv_path)
    if csv_path.suffix.lower() != ".csv":
        raise SubmissionError(f"a submission path must end in .csv (its record goes beside it "
                              f"as .json). Received: {csv_path}")
    return csv_path.with_suffix(".json")


def write_record(csv_path: str | os.PathLike, record: dict) -> Path:
    """Write the record of a submission just written; it names the CSV's SHA-256.

    Raises:
        SubmissionError: ``record`` lacks ``submission_sha256`` or ``data_fingerprint``.
    """
    missing = [key for key in ("submission_sha256", "data_fingerprint") if key not in record]
    if missing:
        raise SubmissionError(f"a submission record needs {', '.join(missing)}")
    return write_json_atomic(record_path(csv_path), record)


def find_record(csv_path: str | os.PathLike) -> Path | None:
    """The record of a submission: NAME.json beside it, or, for a run directory's own
    submission.csv, the run's metrics.json. Looked up beside the file, never relative to the
    working directory; None when there is none."""
    csv_path = Path(csv_path)
    candidates = [record_path(csv_path)]
    run = RunDir(csv_path.parent)
    if csv_path.name == run.submission_path.name:
        candidates.append(run.metrics_path)
    return next((record for record in candidates if record.is_file()), None)


def read_record(csv_path: str | os.PathLike) -> dict | None:
    """The record of a submission (see :func:`find_record`), or None when there is none.

    Raises:
        SubmissionError: a record that cannot be read (not JSON, hostile numbers, not a
            mapping).
    """
    path = find_record(csv_path)
    if path is None:
        return None
    try:
        record = parse_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SubmissionError(f"{path}: not a readable submission record ({exc})") from None
    if not isinstance(record, dict):
        raise SubmissionError(f"{path}: not a readable submission record (not a mapping)")
    problem = _record_problem(record)
    if problem:
        raise SubmissionError(f"{path}: not a readable submission record ({problem})")
    return record


def _record_problem(record: dict) -> str | None:
    """What makes a record's figures ones no run could have written, or None."""
    accuracy, rows = record.get("val_accuracy"), record.get("val_rows")
    if accuracy is not None and (isinstance(accuracy, bool) or not isinstance(
            accuracy, (int, float)) or not 0.0 <= accuracy <= 1.0):
        return f"val_accuracy must be an accuracy in [0, 1]. Received: {accuracy!r}"
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        return f"val_rows must be a count of rows. Received: {rows!r}"
    members = record.get("members")
    if members is not None and (not isinstance(members, list) or not members or not all(
            isinstance(member, dict) and isinstance(member.get("run_dir"), str)
            for member in members)):
        return "members must be a list of members, each naming its run_dir"
    for key in ("submission_sha256", "run_dir"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} must be text. Received: {record[key]!r}"
    return None


def publish_submission(run: RunDir, metrics: dict, submissions_dir: str | Path) -> Path:
    """Copy the run's submission to ``submissions_dir/<run>.csv`` with its record beside it, and
    note both in ``metrics`` (which the caller then writes, last)."""
    copy = Path(submissions_dir) / f"{run.name}.csv"
    # Under the output lock, as every submission and record written: another command writing
    # the same copy waits, and the record names the file this call wrote.
    with directory_lock(copy, wait_s=OUTPUT_LOCK_WAIT_S):
        with atomic_path(copy) as tmp:
            shutil.copyfile(run.submission_path, tmp)
        metrics.update(submission=str(copy), submission_sha256=sha256_file(copy))
        write_record(copy, submission_record(run, metrics))
    return copy


def submission_record(run: RunDir, metrics: dict) -> dict:
    """The sidecar beside a submission copy: which run made it, for which data, and the CSV's
    own SHA-256 so that submit.py can tell an edited file from the one the run wrote."""
    return {"run_dir": str(run.path.resolve()), "arch": metrics["arch"],
            "val_accuracy": metrics.get("val_accuracy"), "val_rows": metrics.get("val_rows"),
            "is_sample": metrics["is_sample"],
            "data_fingerprint": metrics["data_fingerprint"],
            "submission_sha256": metrics["submission_sha256"]}
