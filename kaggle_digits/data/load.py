"""Load, validate and split Kaggle Digit Recognizer CSVs.

train.csv is ``label,pixel0..pixel783``; test.csv is ``pixel0..pixel783``; one 28x28 grayscale
image per row, pixels 0-255. Every problem is reported as a :class:`DataError` that names the file,
the line and the column, because a competitor fixing a broken download needs exactly that.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_digits import UserError
from kaggle_digits.runs.io import sha256_file

IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
LABEL_COLUMN = "label"
PIXEL_COLUMNS = [f"pixel{i}" for i in range(NUM_PIXELS)]
COMPETITION_TEST_ROWS = 28_000
CSV_MEMORY_FACTOR = 4

KAGGLE_INPUT_DIR = Path("/kaggle/input/digit-recognizer")
LOCAL_DATA_DIR = Path("data") / "digit-recognizer"
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


class DataError(UserError):
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

    Returns the directory and whether it is the bundled sample (found by default or named), so
    callers can say so loudly.
    """
    if data_dir is not None:
        return Path(data_dir), Path(data_dir).absolute() == SAMPLE_DATA_DIR
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


def _open_binary(path: Path, compression: str | None):
    return gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")


def available_memory_bytes() -> int | None:
    """Memory the kernel says a new allocation can get without swapping (None if unknown)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _uncompressed_size(path: Path, compression: str | None) -> int:
    """Bytes of CSV text: the file size, or a gzip stream's recorded length (ISIZE, mod 4 GiB)."""
    size = path.stat().st_size
    if compression != "gzip" or size < 18:
        return size
    with open(path, "rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return max(int.from_bytes(handle.read(4), "little"), size)


def _check_fits_in_memory(path: Path, compression: str | None) -> None:
    """Refuse a file whose parsed table cannot fit, before pandas starts allocating for it.

    Every cell takes at least two bytes of text ("0,") and eight as an int64, and the parser
    holds its tokens too: four times the text is the least the table will need.
    """
    needed = CSV_MEMORY_FACTOR * _uncompressed_size(path, compression)
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise DataError(path, f"too large to load: about {needed / 1024**3:.1f} GiB of memory "
                              f"needed, {available / 1024**3:.1f} GiB available (the competition's "
                              f"train.csv needs about 0.3 GiB); is this the right file?")


def _first_undecodable_line(path: Path, compression: str | None) -> tuple[int, int] | None:
    """The 1-based line and the byte value of the first byte that is not UTF-8."""
    with _open_binary(path, compression) as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, raw[exc.start]
    return None


def _header_names(path: Path, compression: str | None) -> list[str]:
    """The header's column names as written, stripped of surrounding whitespace."""
    with _open_binary(path, compression) as handle:
        first = handle.readline().decode("utf-8-sig")
    return [name.strip() for name in next(csv.reader([first]), [])]


def _check_header(path: Path, names: list[str]) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(path, f"column '{name}' appears twice in the header (columns "
                                  f"{seen[name]} and {position})", line=1, column=name)
        seen[name] = position


class _FileLines:
    """File line numbers of a frame's rows, found (only when an error needs one) by scanning
    for the blank lines pandas skipped: an error names the line an editor shows."""

    def __init__(self, path: Path, compression: str | None):
        self.path, self.compression = path, compression
        self._numbers: list[int] | None = None

    def __getitem__(self, row: int) -> int:
        if self._numbers is None:
            with _open_binary(self.path, self.compression) as handle:
                self._numbers = [number for number, raw in enumerate(handle, start=1)
                                 if raw.strip()]
        return self._numbers[int(row) + 1]  # The first non-blank line is the header.


def _read_frame(path: Path) -> tuple[pd.DataFrame, _FileLines]:
    """The CSV as a frame (blank lines skipped) and the file line number of each of its rows."""
    compression = _compression_for(path)
    try:
        _check_fits_in_memory(path, compression)
        names = _header_names(path, compression)
        _check_header(path, names)
        frame = pd.read_csv(path, compression=compression, encoding="utf-8-sig",
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
    except UnicodeDecodeError:
        where = _first_undecodable_line(path, compression)
        line, byte = where if where else (None, None)
        detail = f"byte 0x{byte:02X} " if byte is not None else ""
        raise DataError(path, f"{detail}is not UTF-8 text (a latin-1 or binary file?); the "
                              f"competition's files are plain ASCII", line=line) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(path, f"the gzip stream is truncated or corrupt ({exc}); fetch the "
                              f"file again") from None
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc}") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame, _FileLines(path, compression)


def _check_columns(path: Path, frame: pd.DataFrame, expected: list[str]) -> None:
    columns = [str(c) for c in frame.columns]
    present, wanted = set(columns), set(expected)  # Not 785 x 785 list lookups.
    missing = [c for c in expected if c not in present]
    extra = [c for c in columns if c not in wanted]
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


def _as_integers(path: Path, values: pd.DataFrame, lines: _FileLines) -> np.ndarray:
    """Cells as int64, accepting whole-number floats ("3.0", as pandas writes after a float
    cast); the first cell in file order that is missing, not a number or not whole is refused."""
    if all(pd.api.types.is_integer_dtype(dtype) for dtype in values.dtypes):
        # pandas reads 2**63 and above as uint64, which an int64 cast would wrap to negatives.
        # Only such columns are looked at: a column at a time over all 785 was slow.
        unsigned = np.array([pd.api.types.is_unsigned_integer_dtype(dtype)
                             for dtype in values.dtypes])
        if unsigned.any():
            too_large = np.zeros(values.shape, dtype=bool)
            too_large[:, unsigned] = values.iloc[:, unsigned].to_numpy() > _LARGEST
            if too_large.any():
                _raise_too_large(path, values, lines, too_large)
        return values.to_numpy(dtype=np.int64)
    numeric = values.apply(pd.to_numeric, errors="coerce")
    original_missing = values.isna().to_numpy()
    not_number = numeric.isna().to_numpy() & ~original_missing
    numbers = numeric.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        not_integer = ~np.isnan(numbers) & (np.mod(numbers, 1) != 0)
    bad = original_missing | not_number | not_integer
    if not bad.any():
        # Checked before the cast so that 1e300 is reported as written, not wrapped around.
        too_large = np.abs(numbers) > _LARGEST
        if too_large.any():
            _raise_too_large(path, values, lines, too_large)
        return numbers.astype(np.int64)
    row, col = np.argwhere(bad)[0]
    column, line = str(values.columns[col]), int(lines[row])
    if original_missing[row, col]:
        message = "missing value (empty cell or short row)"
    elif not_number[row, col]:
        message = f"{_shown(values.iat[row, col])} is not a number"
    else:
        message = f"{_shown(values.iat[row, col])} is not an integer"
    raise DataError(path, message, line=line, column=column)


_LARGEST = 2**62  # Far beyond any pixel or label, well inside int64.


def _raise_too_large(path: Path, values: pd.DataFrame, lines: "_FileLines",
                     too_large: np.ndarray) -> None:
    row, col = np.argwhere(too_large)[0]
    raise DataError(path, f"{_shown(values.iat[row, col])} is too large a number (pixels are "
                          f"0-255, labels 0-9)", line=int(lines[row]),
                    column=str(values.columns[col]))


def _shown(cell) -> str:
    return repr(cell) if isinstance(cell, str) else f"'{cell}'"


def _check_range(path: Path, array: np.ndarray, lines: _FileLines, columns: list[str],
                 low: int, high: int, what: str) -> None:
    bad = (array < low) | (array > high)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        value = array[row, col]
        shown = int(value) if float(value).is_integer() else value
        raise DataError(path, f"{what} {shown} is outside {low}-{high}",
                        line=int(lines[row]), column=columns[col])


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
    frame, lines = _read_frame(path)
    expected = ([LABEL_COLUMN] if labelled else []) + PIXEL_COLUMNS
    _check_columns(path, frame, expected)
    if len(frame) == 0:
        raise DataError(path, "header only, no data rows")
    array = _as_integers(path, frame[expected], lines)
    pixel_start = 1 if labelled else 0
    _check_range(path, array[:, pixel_start:], lines, PIXEL_COLUMNS, 0, 255, "pixel value")
    labels = None
    if labelled:
        _check_range(path, array[:, :1], lines, [LABEL_COLUMN], 0, NUM_CLASSES - 1, "label")
        labels = array[:, 0].copy()
    images = array[:, pixel_start:].astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE, 1)
    return images, labels


def competition_files(data_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The train and test CSVs of a data directory (DataError naming the one that is missing)."""
    return _require_csv(data_dir, "train"), _require_csv(data_dir, "test")


def load_competition_data(data_dir: str | os.PathLike) -> DigitData:
    """Load and validate train and test CSVs of a data directory, with their fingerprints."""
    train_path, test_path = competition_files(data_dir)
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


def current_fingerprint(data_dir: str | os.PathLike | None) -> dict[str, str]:
    """SHA-256 of the train and test files a run given ``data_dir`` would be trained on now."""
    resolved, _ = resolve_data_dir(data_dir)
    return fingerprint_files(list(competition_files(resolved)))


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
