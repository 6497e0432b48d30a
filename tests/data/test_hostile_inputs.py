"""The hostile-input corpus, each case through the path a user takes (training from a data
directory): a clear error naming file, line and column where they apply, or correct handling;
and never a run directory or submission left behind by a refused input."""

from __future__ import annotations

import gzip
import re

import pandas as pd
import pytest
from helpers import PIXELS, make_tiny_data_dir

from kaggle_digits.data.load import DataError
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.run import train

HEADER = "label," + ",".join(PIXELS)


def row(label, pixels=None):
    return ",".join(str(v) for v in ([label] if label is not None else []) +
                    (pixels or [0] * 784))


def edit_line(text, line, column, value):
    """Replace one cell: ``line`` is the 1-based file line, ``column`` a header name."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


# (case, file, how the file's text changes, expected message parts; None = handled correctly)
CORPUS = [
    ("empty file", "train.csv", lambda t: "", ["train.csv", "empty"]),
    ("header only", "train.csv", lambda t: HEADER + "\n", ["train.csv", "no data rows"]),
    ("missing column", "train.csv", lambda t: "\n".join(",".join(line.split(",")[:-1])
                                                        for line in t.splitlines()) + "\n",
     ["train.csv", "pixel783", "missing"]),
    ("extra column", "train.csv",
     lambda t: "\n".join(line + (",extra" if i == 0 else ",0")
                         for i, line in enumerate(t.splitlines())) + "\n",
     ["train.csv", "extra", "unexpected"]),
    ("NaN", "train.csv", lambda t: edit_line(t, 5, "pixel100", ""),
     ["train.csv", "line 5", "pixel100", "missing value"]),
    ("text in a pixel", "train.csv", lambda t: edit_line(t, 4, "pixel7", "abc"),
     ["train.csv", "line 4", "pixel7", "not a number"]),
    ("negative pixel", "train.csv", lambda t: edit_line(t, 3, "pixel9", "-4"),
     ["train.csv", "line 3", "pixel9", "outside 0-255"]),
    ("pixel over 255", "test.csv", lambda t: edit_line(t, 6, "pixel300", "256"),
     ["test.csv", "line 6", "pixel300", "outside 0-255"]),
    ("label 10", "train.csv", lambda t: edit_line(t, 2, "label", "10"),
     ["train.csv", "line 2", "label", "outside 0-9"]),
    ("label -1", "train.csv", lambda t: edit_line(t, 7, "label", "-1"),
     ["train.csv", "line 7", "label", "outside 0-9"]),
    ("short row", "train.csv",
     lambda t: "\n".join(line if i != 2 else ",".join(line.split(",")[:-5])
                         for i, line in enumerate(t.splitlines())) + "\n",
     ["train.csv", "line 3", "pixel779"]),
    ("duplicated header row", "train.csv",
     lambda t: "\n".join(t.splitlines()[:3] + [HEADER] + t.splitlines()[3:]) + "\n",
     ["train.csv", "line 4", "label", "not a number"]),
    ("test.csv with a label column", "test.csv",
     lambda t: "label," + t.splitlines()[0] + "\n"
     + "\n".join("0," + line for line in t.splitlines()[1:]) + "\n",
     ["test.csv", "label", "is this train.csv"]),
    ("one-row train.csv", "train.csv", lambda t: "\n".join(t.splitlines()[:2]) + "\n",
     ["cannot stratify"]),
    ("Windows line endings", "train.csv", lambda t: t.replace("\n", "\r\n"), None),
    ("UTF-8 BOM", "test.csv", lambda t: "\ufeff" + t, None),
    ("whole-number floats", "train.csv", lambda t: re.sub(r"(?m)(?<=[,\n])(\d+)(?=[,\n])",
                                                          r"\1.0", t), None),
    ("blank lines and spaced header", "test.csv",
     lambda t: t.replace("pixel0,", " pixel0 ,", 1).replace("\n", "\n\n", 3) + "\n\n", None),
    ("blank line before a bad cell", "train.csv",
     lambda t: edit_line(t, 4, "pixel7", "x").replace("\n", "\n\n", 1),
     ["train.csv", "line 5", "pixel7", "not a number"]),
    ("duplicated column name", "train.csv", lambda t: t.replace("pixel9,", "pixel8,", 1),
     ["train.csv", "line 1", "pixel8", "appears twice"]),
    ("latin-1 byte", "test.csv", lambda t: edit_line(t, 3, "pixel7", "0\xe9").encode("latin-1"),
     ["test.csv", "line 3", "0xE9", "not UTF-8"]),
    ("truncated gzip", "train.csv", lambda t: gzip.compress(t.encode())[:5000],
     ["train.csv", "truncated or corrupt"]),
    # Numbers beyond a machine integer: pandas reads 2**63.. as uint64, which wrapped to "-1".
    ("pixel 2**64-1", "train.csv", lambda t: edit_line(t, 3, "pixel9", str(2**64 - 1)),
     ["train.csv", "line 3", "pixel9", f"'{2**64 - 1}' is too large"]),
    ("label 2**63", "train.csv", lambda t: edit_line(t, 4, "label", str(2**63)),
     ["train.csv", "line 4", "label", f"'{2**63}' is too large"]),
    ("pixel 10**30", "test.csv", lambda t: edit_line(t, 2, "pixel5", "1" + "0" * 30),
     ["test.csv", "line 2", "pixel5", "too large"]),
    ("pixel -2**63-1", "test.csv", lambda t: edit_line(t, 2, "pixel5", str(-2**63 - 1)),
     ["test.csv", "line 2", "pixel5", "too large"]),
]


@pytest.mark.parametrize("case, target, change, expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_input(case, target, change, expected, tmp_path):
    data_dir = make_tiny_data_dir(tmp_path)
    path = data_dir / target
    changed = change(path.read_text())
    if isinstance(changed, bytes):
        path.write_bytes(changed)
    else:
        path.write_text(changed, newline="")
    config = TrainConfig(arch="mlp", data_dir=str(data_dir), epochs=1,
                         output_dir=str(tmp_path / "runs"), submissions_dir=str(tmp_path / "subs"))
    if expected is None:
        metrics, _ = train(config, log=lambda _: None)
        assert metrics["train_rows"] == 320 and metrics["test_rows"] == 60
        return
    with pytest.raises((DataError, ValueError)) as info:
        train(config, log=lambda _: None)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (case, message)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "subs").exists()


@pytest.mark.slow
def test_gzip_file_named_csv_is_read(tmp_path):
    data_dir = make_tiny_data_dir(tmp_path)
    raw = (data_dir / "test.csv").read_bytes()
    (data_dir / "test.csv").write_bytes(gzip.compress(raw))
    metrics, _ = train(TrainConfig(arch="mlp", data_dir=str(data_dir), epochs=1,
                                   output_dir=str(tmp_path / "runs"),
                                   submissions_dir=str(tmp_path / "subs")), log=lambda _: None)
    assert metrics["test_rows"] == 60


@pytest.mark.parametrize("ids, needle", [([2, 1, 3], "line 2"), ([1, 1, 3], "line 3")],
                         ids=["shuffled ImageIds", "duplicate ImageIds"])
def test_hostile_submission_is_located_and_not_submitted(ids, needle, tmp_path):
    from kaggle_digits.submission.files import check_submission_file

    path = tmp_path / "sub.csv"
    pd.DataFrame({"ImageId": ids, "Label": [1, 2, 3]}).to_csv(path, index=False)
    [problem] = check_submission_file(path)
    assert "sub.csv" in problem and needle in problem and "ImageId" in problem


@pytest.mark.parametrize("cell", [str(2**64), "9" * 40, "-" + "9" * 19])
def test_a_submission_number_beyond_a_machine_integer_is_located(cell, tmp_path):
    from kaggle_digits.submission.files import check_submission_file

    path = tmp_path / "sub.csv"
    path.write_text(f"ImageId,Label\n1,1\n{cell},2\n")
    [problem] = check_submission_file(path)
    assert "line 3, column 'ImageId'" in problem and "too large" in problem


@pytest.mark.slow
@pytest.mark.parametrize("field, text, needle", [
    ("epochs", "99999999999999999999999", "too large"),
    ("learning_rate", "NaN", "NaN is not a number"),
    ("learning_rate", "1e999", "too large"),
    ("batch_size", "true", "batch_size must be a whole number"),
    ("seed", "4294967296", "seed must be between 0"),
    ("run_name", '"../../x"', "run_name must be a plain name"),
])
def test_a_hostile_config_file_is_one_line(field, text, needle, tmp_path):
    import json

    from helpers import assert_one_line_error, run_cli

    values = TrainConfig(arch="mlp").to_dict()
    config = json.dumps(values).replace(f'"{field}": {json.dumps(values[field])}',
                                        f'"{field}": {text}')
    assert text in config
    (tmp_path / "config.json").write_text(config)
    result = run_cli("train.py", "--config", str(tmp_path / "config.json"), cwd=tmp_path)
    assert_one_line_error(result, "config.json: not a usable training config", needle)
    assert not (tmp_path / "runs").exists()
