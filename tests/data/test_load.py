import gzip
import hashlib

import numpy as np
import pytest
from helpers import PIXELS, ROOT, digit_frame, write_csv

from kaggle_digits.data import load as data
from kaggle_digits.data import splits
from kaggle_digits.data.load import DataError, read_digits_csv


def test_reads_train_and_test_into_uint8_images(tmp_path):
    frame = digit_frame(12)
    images, labels = read_digits_csv(write_csv(tmp_path / "train.csv", frame), labelled=True)
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    assert labels.tolist() == frame["label"].tolist()
    assert images[3].ravel().tolist() == frame.iloc[3, 1:].tolist()
    test_images, none = read_digits_csv(write_csv(tmp_path / "test.csv", digit_frame(5, False)),
                                        labelled=False)
    assert test_images.shape == (5, 28, 28, 1) and none is None


def error_for(tmp_path, frame=None, text=None, labelled=True) -> DataError:
    path = tmp_path / "bad.csv"
    if text is not None:
        path.write_text(text)
    else:
        frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        read_digits_csv(path, labelled=labelled)
    assert str(path) in str(info.value)
    return info.value


def test_missing_column_is_named(tmp_path):
    error = error_for(tmp_path, digit_frame(3).drop(columns="pixel783"))
    assert error.column == "pixel783" and "missing" in str(error)


def test_extra_column_is_named(tmp_path):
    frame = digit_frame(3)
    frame["pixel784"] = 0
    error = error_for(tmp_path, frame)
    assert error.column == "pixel784" and "unexpected" in str(error)


def test_test_file_with_label_column_is_refused(tmp_path):
    error = error_for(tmp_path, digit_frame(3), labelled=False)
    assert error.column == "label" and "is this train.csv" in str(error)


def test_nan_names_line_and_column(tmp_path):
    frame = digit_frame(5).astype(float)
    frame.loc[3, "pixel100"] = np.nan
    error = error_for(tmp_path, frame)
    assert (error.line, error.column) == (5, "pixel100") and "missing value" in str(error)


def test_text_in_a_pixel(tmp_path):
    frame = digit_frame(4).astype(object)
    frame.loc[2, "pixel7"] = "abc"
    error = error_for(tmp_path, frame)
    assert (error.line, error.column) == (4, "pixel7") and "not a number" in str(error)


@pytest.mark.parametrize("row, column, value, needle", [
    (1, "pixel9", 1.5, "not an integer"),
    (2, "pixel300", 256, "outside 0-255"),
    (2, "pixel300", -1, "outside 0-255"),
    (0, "label", 10, "outside 0-9"),
    (0, "label", -1, "outside 0-9"),
])
def test_a_bad_cell_is_located_by_line_and_column(tmp_path, row, column, value, needle):
    frame = digit_frame(4).astype(float) if isinstance(value, float) else digit_frame(4)
    frame.loc[row, column] = value
    error = error_for(tmp_path, frame)
    assert (error.line, error.column) == (row + 2, column) and needle in str(error)


def test_empty_file(tmp_path):
    assert "empty" in str(error_for(tmp_path, text=""))


def test_header_only(tmp_path):
    header = ",".join(digit_frame(1).columns) + "\n"
    assert "no data rows" in str(error_for(tmp_path, text=header))


def test_short_row_is_a_missing_value(tmp_path):
    text = digit_frame(3).to_csv(index=False)
    lines = text.splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    error = error_for(tmp_path, text="\n".join(lines) + "\n")
    assert (error.line, error.column) == (3, "pixel783")


def test_long_row_names_its_line(tmp_path):
    lines = digit_frame(3).to_csv(index=False).splitlines()
    lines[3] += ",7"
    error = error_for(tmp_path, text="\n".join(lines) + "\n")
    assert error.line == 4 and "fields" in str(error)


def test_windows_line_endings_and_bom_are_read(tmp_path):
    frame = digit_frame(4)
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, lineterminator="\r\n").encode())
    images, labels = read_digits_csv(path, labelled=True)
    assert labels.tolist() == frame["label"].tolist() and images.shape[0] == 4


def test_gzip_named_csv_is_read(tmp_path):
    frame = digit_frame(4)
    path = tmp_path / "train.csv"
    path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    _, labels = read_digits_csv(path, labelled=True)
    assert labels.tolist() == frame["label"].tolist()


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.load_competition_data(tmp_path)


def test_load_competition_data_fingerprints_files(tiny_data_dir):
    loaded = data.load_competition_data(tiny_data_dir)
    assert loaded.train_images.shape == (400, 28, 28, 1)
    assert loaded.test_images.shape == (60, 28, 28, 1)
    assert loaded.fingerprint == {
        name: hashlib.sha256((tiny_data_dir / name).read_bytes()).hexdigest()
        for name in ("train.csv", "test.csv")}


def test_data_report_counts_classes(tiny_data_dir):
    report = data.data_report(data.load_competition_data(tiny_data_dir))
    assert report["class_counts"] == {str(d): 40 for d in range(10)}
    assert report["missing_values"] == 0 and report["shapes_consistent"]
    assert "class counts: 0:40" in data.format_data_report(report)


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(10), 50)
    train_a, val_a = splits.stratified_split(labels, 0.2, seed=1)
    train_b, val_b = splits.stratified_split(labels, 0.2, seed=1)
    _, val_c = splits.stratified_split(labels, 0.2, seed=2)
    assert np.array_equal(val_a, val_b) and not np.array_equal(val_a, val_c)
    assert len(val_a) == 100 and not set(train_a) & set(val_a)
    assert np.bincount(labels[val_a]).tolist() == [10] * 10


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        splits.stratified_split(np.arange(20) % 10, 1.5, seed=0)


def test_default_data_dir_falls_back_to_bundled_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "KAGGLE_INPUT_DIR", tmp_path / "kaggle-input")
    directory, is_sample = data.resolve_data_dir(None)
    assert is_sample and directory == ROOT / "data" / "sample"
    fetched = tmp_path / "data" / "digit-recognizer"
    fetched.mkdir(parents=True)
    write_csv(fetched / "train.csv", digit_frame(2))
    assert data.resolve_data_dir(None) == (data.LOCAL_DATA_DIR, False)
    assert data.resolve_data_dir(str(tmp_path)) == (tmp_path, False)


def test_bundled_sample_is_valid_and_small():
    loaded = data.load_competition_data(ROOT / "data" / "sample")
    assert len(loaded.train_labels) >= 2000 and len(loaded.test_images) >= 500
    assert sum(p.stat().st_size for p in (ROOT / "data" / "sample").iterdir()) < 2_000_000


def test_whole_number_floats_are_read(tmp_path):
    """As pandas writes a frame after a float cast: 3.0, 12.0 ... are the same integers."""
    frame = digit_frame(6)
    path = write_csv(tmp_path / "train.csv", frame.astype(float))
    assert "3.0" in path.read_text()
    images, labels = read_digits_csv(path, labelled=True)
    assert labels.tolist() == frame["label"].tolist()
    assert images.reshape(6, -1).tolist() == frame[PIXELS].to_numpy().tolist()


def test_huge_float_is_out_of_range_not_wrapped(tmp_path):
    frame = digit_frame(3).astype(float)
    frame.loc[1, "pixel2"] = 1e300
    error = error_for(tmp_path, frame)
    assert (error.line, error.column) == (3, "pixel2") and "'1e+300' is too large" in str(error)


def test_latin1_bytes_name_their_line(tmp_path):
    lines = digit_frame(4).to_csv(index=False).splitlines()
    lines[3] += "\xe9"
    path = tmp_path / "bad.csv"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_digits_csv(path, labelled=True)
    assert info.value.line == 4 and "0xE9 is not UTF-8" in str(info.value)


def test_truncated_gzip_is_one_line(tmp_path):
    packed = gzip.compress(digit_frame(30).to_csv(index=False).encode())
    path = tmp_path / "train.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="gzip stream is truncated or corrupt") as info:
        read_digits_csv(path, labelled=True)
    assert "\n" not in str(info.value)


def test_header_names_with_spaces_are_read(tmp_path):
    text = digit_frame(3).to_csv(index=False)
    header, rest = text.split("\n", 1)
    spaced = ",".join(f" {name} " if i % 7 == 0 else name
                      for i, name in enumerate(header.split(",")))
    path = tmp_path / "train.csv"
    path.write_text(spaced + "\n" + rest)
    _, labels = read_digits_csv(path, labelled=True)
    assert labels.tolist() == [0, 1, 2]


def test_a_duplicated_header_name_is_refused(tmp_path):
    text = digit_frame(3).to_csv(index=False).replace("pixel5,", "pixel4,", 1)
    error = error_for(tmp_path, text=text)
    assert (error.line, error.column) == (1, "pixel4") and "appears twice" in str(error)


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path):
    lines = digit_frame(5).to_csv(index=False).splitlines()
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines[:2] + ["", "  "] + lines[2:]) + "\n\n")
    _, labels = read_digits_csv(path, labelled=True)
    assert labels.tolist() == [0, 1, 2, 3, 4]
    cells = lines[4].split(",")
    cells[10] = "x"
    lines[4] = ",".join(cells)  # Row 4 of the frame, line 7 of the file below.
    error = error_for(tmp_path, text="\n".join(lines[:2] + ["", ""] + lines[2:]) + "\n")
    assert (error.line, error.column) == (7, "pixel9")
    long_row = lines[:]
    long_row[3] += ",7"
    error = error_for(tmp_path, text="\n".join(long_row[:2] + [""] + long_row[2:]) + "\n")
    assert error.line == 5 and "fields" in str(error)


def test_a_file_too_large_for_memory_is_refused_before_parsing(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "train.csv", digit_frame(50))
    monkeypatch.setattr(data, "available_memory_bytes", lambda: path.stat().st_size)

    def parse(*args, **kwargs):
        raise AssertionError("pandas was asked to parse a file that cannot fit")

    monkeypatch.setattr(data.pd, "read_csv", parse)
    with pytest.raises(DataError, match="too large to load") as info:
        read_digits_csv(path, labelled=True)
    assert str(path) in str(info.value) and "GiB available" in str(info.value)
    gz = tmp_path / "train.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))  # Judged by its unpacked size.
    monkeypatch.setattr(data, "available_memory_bytes", lambda: 2 * gz.stat().st_size)
    with pytest.raises(DataError, match="too large to load"):
        read_digits_csv(gz, labelled=True)


def test_pseudo_labels_add_only_the_labelled_test_rows(tiny_data_dir):
    loaded = data.load_competition_data(tiny_data_dir)
    keep = np.zeros(60, dtype=bool)
    keep[[3, 7, 59]] = True
    guesses = np.arange(60) % 10
    encoded = splits.encode_pseudo_labels(guesses, keep)
    assert len(encoded) == 60 and encoded[3] == "3" and encoded[0] == "."
    extended, added = splits.with_pseudo_labels(loaded, encoded)
    assert list(added) == [400, 401, 402]
    assert list(extended.train_labels[added]) == [3, 7, 9]
    np.testing.assert_array_equal(extended.train_images[added], loaded.test_images[[3, 7, 59]])
    # The labelled rows (where validation rows come from) are untouched and come first.
    np.testing.assert_array_equal(extended.train_images[:400], loaded.train_images)
    np.testing.assert_array_equal(extended.test_images, loaded.test_images)
    assert splits.with_pseudo_labels(loaded, "")[0] is loaded


def test_pseudo_labels_for_another_test_file_are_refused(tiny_data_dir):
    loaded = data.load_competition_data(tiny_data_dir)
    with pytest.raises(ValueError, match=r"test.csv: the pseudo-labels are for 61 test rows, "
                                         r"this test.csv has 60"):
        splits.with_pseudo_labels(loaded, "." * 61)
