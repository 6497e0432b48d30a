"""Load, validate and split Kaggle Digit Recognizer CSVs.

train.csv is ``label,pixel0..pixel783``; test.csv is ``pixel0..pixel783``; one 28x28 grayscale
image per row, pixels 0-255. Every problem is reported as a :class:`DataError` that names the file,
the line and the column, because a competitor fixing a broken download needs exactly that.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits.io_utils import sha256_file

IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
LABEL_COLUMN = "label"
PIXEL_COLUMNS = [f"pixel{i}" for i in range(NUM_PIXELS)]
COMPETITION_TEST_ROWS = 28_000

KAGGLE_INPUT_DIR = Path("/kaggle/input/digit-recognizer")
LOCAL_DATA_DIR = Path("data") / "digit-recognizer"
SAMPLE_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


class DataError(ValueError):
    """A data file that cannot be used; the message says where and why in one line."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None,
                 column: str | None = None):
        self.path, self.line, self.column = Path(path), line, column
        where = [str(path)]
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass
class DigitData:
    """The labelled and unlabelled images of one competition data directory."""

    train_images: np.ndarray  # (N, 28, 28, 1) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray  # (M, 28, 28, 1) uint8
    train_path: Path
    test_path: Path
    fingerprint: dict[str, str] = field(default_factory=dict)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """Pick the data directory: the one given, Kaggle's input dir, the fetched data, or the sample.

    Returns the directory and whether it is the bundled sample, so callers can say so loudly.
    """
    if data_dir is not None:
        return Path(data_dir), False
    for candidate in (KAGGLE_INPUT_DIR, LOCAL_DATA_DIR):
        if find_csv(candidate, "train") is not None:
            return candidate, False
    return SAMPLE_DATA_DIR, True


def find_csv(data_dir: str | os.PathLike, stem: str) -> Path | None:
    """Return ``<stem>.csv`` (or ``<stem>.csv.gz``, as the bundled sample ships) in ``data_dir``."""
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        path = Path(data_dir) / name
        if path.is_file():
            return path
    return None


def _require_csv(data_dir: str | os.PathLike, stem: str) -> Path:
    path = find_csv(data_dir, stem)
    if path is None:
        raise DataError(Path(data_dir) / f"{stem}.csv",
                        "file not found; run `python scripts/fetch.py` or pass --data DIR")
    return path


def _compression_for(path: Path) -> str | None:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(_ZIP_MAGIC):
        raise DataError(path, "this is a zip archive, not a CSV; unpack it with "
                              "`python scripts/fetch.py --from-zip FILE`")
    if head.startswith(_GZIP_MAGIC):
        return "gzip"  # A gzip file named .csv is still readable; decompress instead of failing.
    if path.suffix == ".gz":
        raise DataError(path, "named .gz but is not gzip-compressed")
    return None


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, compression=_compression_for(path), encoding="utf-8-sig",
                            low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(path, "file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            expected, line, seen = match.groups()
            raise DataError(path, f"row has {seen} fields, expected {expected}",
                            line=int(line)) from None
        raise DataError(path, f"not a valid CSV: {exc}".splitlines()[0]) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text (byte {exc.start}); is it a binary file?") from None
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc}") from None
    return frame


def _check_columns(path: Path, frame: pd.DataFrame, expected: list[str]) -> None:
    columns = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if LABEL_COLUMN in extra and LABEL_COLUMN not in expected:
        raise DataError(path, "has a 'label' column, but a test file carries pixels only "
                              "(is this train.csv?)", line=1, column=LABEL_COLUMN)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise DataError(path, f"{len(missing)} expected column(s) missing: {shown} "
                              f"(expected {len(expected)} columns, found {len(columns)})",
                        line=1, column=missing[0])
    if extra:
        shown = ", ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
        raise DataError(path, f"{len(extra)} unexpected column(s): {shown}", line=1,
                        column=extra[0])


def _first_bad_cell(path: Path, values: pd.DataFrame) -> DataError:
    """Locate the first cell (in file order) that is missing, not a number or not an integer."""
    numeric = values.apply(pd.to_numeric, errors="coerce")
    original_missing = values.isna().to_numpy()
    not_number = numeric.isna().to_numpy() & ~original_missing
    numbers = numeric.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        not_integer = ~np.isnan(numbers) & (np.mod(numbers, 1) != 0)
    bad = original_missing | not_number | not_integer
    row, col = np.argwhere(bad)[0]
    column = str(values.columns[col])
    line = int(row) + 2  # Line 1 is the header.
    if original_missing[row, col]:
        return DataError(path, "missing value (empty cell or short row)", line=line, column=column)
    if not_number[row, col]:
        return DataError(path, f"{values.iat[row, col]!r} is not a number", line=line,
                         column=column)
    return DataError(path, f"{values.iat[row, col]!r} is not an integer", line=line, column=column)


def _check_range(path: Path, array: np.ndarray, columns: list[str], low: int, high: int,
                 what: str) -> None:
    bad = (array < low) | (array > high)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(path, f"{what} {array[row, col]} is outside {low}-{high}",
                        line=int(row) + 2, column=columns[col])


def read_digits_csv(path: str | os.PathLike, *, labelled: bool
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read and validate one Kaggle-format CSV.

    Args:
        path: train.csv (``labelled=True``) or test.csv (``labelled=False``); ``.csv.gz`` works too.
        labelled: whether the file must have a leading ``label`` column.

    Returns:
        ``(images, labels)``: images as ``(N, 28, 28, 1)`` uint8, labels as int64 or ``None``.

    Raises:
        DataError: naming the file, line and column of the first problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    frame = _read_frame(path)
    expected = ([LABEL_COLUMN] if labelled else []) + PIXEL_COLUMNS
    _check_columns(path, frame, expected)
    if len(frame) == 0:
        raise DataError(path, "header only, no data rows")
    values = frame[expected]
    if not all(pd.api.types.is_integer_dtype(dtype) for dtype in values.dtypes):
        raise _first_bad_cell(path, values)
    array = values.to_numpy(dtype=np.int64)
    pixel_start = 1 if labelled else 0
    _check_range(path, array[:, pixel_start:], PIXEL_COLUMNS, 0, 255, "pixel value")
    labels = None
    if labelled:
        _check_range(path, array[:, :1], [LABEL_COLUMN], 0, NUM_CLASSES - 1, "label")
        labels = array[:, 0].copy()
    images = array[:, pixel_start:].astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1)
    return images, labels


def load_competition_data(data_dir: str | os.PathLike) -> DigitData:
    """Load and validate train and test CSVs of a data directory, with their fingerprints."""
    train_path = _require_csv(data_dir, "train")
    test_path = _require_csv(data_dir, "test")
    train_images, train_labels = read_digits_csv(train_path, labelled=True)
    test_images, _ = read_digits_csv(test_path, labelled=False)
    return DigitData(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        train_path=train_path,
        test_path=test_path,
        fingerprint=fingerprint_files([train_path, test_path]),
    )


def fingerprint_files(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of each file by name: runs made on different data must never be mixed."""
    return {Path(p).name: sha256_file(p) for p in paths}


def data_report(data: DigitData) -> dict:
    """The checks the seed reports ran before training: missing values, shapes, class balance."""
    counts = np.bincount(data.train_labels, minlength=NUM_CLASSES)
    return {
        "train_rows": int(len(data.train_labels)),
        "test_rows": int(len(data.test_images)),
        "missing_values": 0,  # read_digits_csv rejects any missing cell.
        "image_shape": list(data.train_images.shape[1:]),
        "shapes_consistent": data.train_images.shape[1:] == data.test_images.shape[1:]
        == (IMAGE_SIDE, IMAGE_SIDE, 1),
        "class_counts": {str(digit): int(n) for digit, n in enumerate(counts)},
        "class_imbalance_ratio": round(float(counts.max() / max(counts.min(), 1)), 3),
    }


def format_data_report(report: dict) -> str:
    counts = ", ".join(f"{digit}:{n}" for digit, n in report["class_counts"].items())
    return (
        f"data checks: {report['train_rows']} train rows, {report['test_rows']} test rows, "
        f"missing values {report['missing_values']}, "
        f"shapes {'consistent' if report['shapes_consistent'] else 'INCONSISTENT'} "
        f"{tuple(report['image_shape'])}\n"
        f"class counts: {counts} (max/min {report['class_imbalance_ratio']})"
    )


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/validation indices (sorted), the same for the same labels and seed."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1. Received: val_fraction={val_fraction}")
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    present = counts[counts > 0]
    if present.min() < 2:
        rare = [str(d) for d in np.flatnonzero((counts > 0) & (counts < 2))]
        raise ValueError(f"cannot stratify: digit(s) {', '.join(rare)} appear only once")
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
        raise ValueError(f"cannot make {folds} stratified folds: the rarest digit has only "
                         f"{counts[counts > 0].min()} rows")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(np.sort(train), np.sort(val))
            for train, val in splitter.split(np.zeros(len(labels)), labels)]
