import numpy as np
import pandas as pd
import pytest
from conftest import digit_frame, run_script, write_csv

from kaggle_digits.submission import (
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
    result = run_script("validate.py", str(good), "--data", str(no_test_file))
    assert result.returncode == 0 and "VALID, ready to submit" in result.stdout
    bad = tmp_path / "bad.csv"
    pd.read_csv(good).sample(frac=1, random_state=0).to_csv(bad, index=False)
    result = run_script("validate.py", str(bad), "--data", str(no_test_file))
    assert result.returncode == 1 and "NOT VALID" in result.stdout and "ImageId" in result.stdout


def test_validate_script_checks_against_the_test_file(tmp_path):
    write_csv(tmp_path / "test.csv", digit_frame(5, labelled=False))
    small = write_submission(np.zeros(5, dtype=int), tmp_path / "small.csv")
    result = run_script("validate.py", str(small), "--data", str(tmp_path))
    assert "ok: 5 rows, one per row of the test file" in result.stdout
    assert result.returncode == 1 and "competition expects 28000" in result.stdout
