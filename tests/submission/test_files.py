import gzip

import numpy as np
import pandas as pd
import pytest
from helpers import digit_frame, run_cli, write_csv

from kaggle_digits.submission.files import (
    SubmissionError,
    check_submission_file,
    verdict,
    write_submission,
)


def test_writes_image_ids_in_test_order(tmp_path):
    path = write_submission(np.array([3, 1, 4, 1, 5]), tmp_path / "sub.csv", expected_rows=5)
    assert path.read_text() == "ImageId,Label\n1,3\n2,1\n3,4\n4,1\n5,5\n"
    assert check_submission_file(path, expected_rows=5) == []


def test_wrong_row_count_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(SubmissionError, match="has 3 rows, expected 5"):
        write_submission(np.array([1, 2, 3]), tmp_path / "sub.csv", expected_rows=5)
    assert list(tmp_path.iterdir()) == []


def test_labels_outside_digits_are_refused(tmp_path):
    with pytest.raises(SubmissionError, match="outside 0-9"):
        write_submission(np.array([1, 10]), tmp_path / "sub.csv")


def write_rows(path, ids, labels, header="ImageId,Label"):
    lines = [header] + [f"{i},{label}" for i, label in zip(ids, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("ids, labels, message", [
    ([2, 1, 3], [0, 0, 0], "line 2 has 2, expected 1"),
    ([1, 1, 2], [0, 0, 0], "1 duplicate ids"),
    ([1, 2, 3], [0, 11, 0], "first on line 3: 11"),
])
def test_file_problems_are_located(tmp_path, ids, labels, message):
    problems = check_submission_file(write_rows(tmp_path / "s.csv", ids, labels))
    assert len(problems) == 1 and message in problems[0]


def test_bad_header_and_text_values(tmp_path):
    assert "header must be" in check_submission_file(
        write_rows(tmp_path / "a.csv", [1], [0], header="id,label"))[0]
    assert "'x' is not an integer" in check_submission_file(
        write_rows(tmp_path / "b.csv", [1, 2], [0, "x"]))[0]


def test_verdict_requires_the_competition_row_count(tmp_path):
    small = write_submission(np.zeros(4, dtype=int), tmp_path / "small.csv")
    ok, lines = verdict(small, test_rows=4)
    assert not ok and any("expects 28000" in line for line in lines)
    full = write_submission(np.zeros(28_000, dtype=int), tmp_path / "full.csv")
    assert verdict(full, test_rows=28_000)[0]
    assert not verdict(full, test_rows=27_999)[0]


def test_validate_script_verdicts(tmp_path):
    no_test_file = tmp_path / "empty"
    no_test_file.mkdir()
    good = write_submission(np.arange(28_000) % 10, tmp_path / "good.csv")
    result = run_cli("validate.py", str(good), "--data", str(no_test_file))
    assert result.returncode == 0 and "VALID, ready to submit" in result.stdout
    bad = tmp_path / "bad.csv"
    pd.read_csv(good).sample(frac=1, random_state=0).to_csv(bad, index=False)
    result = run_cli("validate.py", str(bad), "--data", str(no_test_file))
    assert result.returncode == 1 and "NOT VALID" in result.stdout and "ImageId" in result.stdout


def test_validate_script_checks_against_the_test_file(tmp_path):
    write_csv(tmp_path / "test.csv", digit_frame(5, labelled=False))
    small = write_submission(np.zeros(5, dtype=int), tmp_path / "small.csv")
    result = run_cli("validate.py", str(small), "--data", str(tmp_path))
    assert "ok: 5 rows, one per row of the test file" in result.stdout
    assert result.returncode == 1 and "competition expects 28000" in result.stdout


GOOD = "ImageId,Label\n1,3\n2,0\n3,9\n"

# (case, file bytes, expected problem parts; None = a valid file)
MALFORMED = [
    ("Label written as a float", GOOD.replace("1,3", "1,3.0"), ["line 2", "'Label'", "'3.0'"]),
    ("ImageId written as a float", GOOD.replace("2,0", "2.0,0"), ["line 3", "'ImageId'"]),
    ("signed number", GOOD.replace("3,9", "3,+9"), ["line 4", "'+9'"]),
    ("space in a cell", GOOD.replace("1,3", "1, 3"), ["line 2", "' 3'"]),
    ("empty cell", GOOD.replace("2,0", "2,"), ["line 3", "'Label'", "''"]),
    ("third column", GOOD.replace("2,0", "2,0,1"), ["line 3", "3 fields"]),
    ("one column", GOOD.replace("2,0", "2"), ["line 3", "1 fields"]),
    ("blank line inside", GOOD.replace("2,0\n", "\n2,0\n"), ["line 3 is blank"]),
    ("empty file", "", ["file is empty"]),
    ("header only", "ImageId,Label\n", ["header only"]),
    ("no header", GOOD.split("\n", 1)[1], ["line 1", "header must be"]),
    ("header in other case", GOOD.replace("ImageId", "imageid"), ["header must be"]),
    ("header with a space", GOOD.replace("Label", " Label"), ["header must be"]),
    ("label 10", GOOD.replace("3,9", "3,10"), ["outside 0-9", "line 4"]),
    ("negative label", GOOD.replace("3,9", "3,-1"), ["outside 0-9"]),
    ("ids from 0", "ImageId,Label\n0,3\n1,0\n2,9\n", ["ImageId must run 1..3"]),
    ("latin-1 byte", GOOD.replace("2,0", "2,0\xe9").encode("latin-1"), ["line 3", "0xE9"]),
    ("gzip-compressed", gzip.compress(GOOD.encode()), ["compressed"]),
    ("trailing blank lines", GOOD + "\n\n", None),
    ("Windows line endings", GOOD.replace("\n", "\r\n"), None),
    ("UTF-8 BOM", "\ufeff" + GOOD, None),
]


@pytest.mark.parametrize("case, content, expected", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_every_malformed_submission_is_refused_in_one_line(case, content, expected, tmp_path):
    path = tmp_path / "sub.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    problems = check_submission_file(path, expected_rows=3)
    if expected is None:
        assert problems == []
        return
    assert len(problems) == 1 and "\n" not in problems[0] and "sub.csv" in problems[0]
    for part in expected:
        assert part in problems[0], (case, problems[0])


@pytest.mark.parametrize("column", ["ImageId", "Label"])
def test_validate_script_refuses_floats(column, tmp_path):
    frame = pd.DataFrame({"ImageId": np.arange(1, 28_001), "Label": np.arange(28_000) % 10})
    frame[column] = frame[column].astype(float)
    path = tmp_path / "floats.csv"
    frame.to_csv(path, index=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("validate.py", str(path), "--data", str(empty))
    assert result.returncode == 1 and "NOT VALID" in result.stdout
    assert f"column '{column}'" in result.stdout and "not an integer" in result.stdout
