"""Label issues: confident learning (cleanlab) on calibrated held-out probabilities finds the
rows whose given label is wrong; report.py --label-issues writes them and train.py
--exclude-rows trains without them while scoring every row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_line_error, run_cli, tiny_config

from kaggle_digits.evaluation.label_issues import calibrate, find_label_issues


def smoothed_probs(true_labels, sure=0.9, seed=0):
    """Probabilities as a label-smoothed model gives them: ~0.9 on its digit, the rest spread."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(10), size=len(true_labels)) * (1 - sure)
    probs[np.arange(len(true_labels)), true_labels] += sure
    return probs / probs.sum(axis=1, keepdims=True)


def test_calibrated_confident_learning_finds_the_flipped_labels():
    true = np.arange(1000) % 10
    probs = smoothed_probs(true)
    given = true.copy()
    flipped = np.array([3, 77, 150, 431, 600, 812, 955, 999])
    given[flipped] = (true[flipped] + 1) % 10  # Wrong labels the model does not believe.
    calibrated, temperature = calibrate(probs, given)
    assert temperature < 1.0  # Sharpened: the soft probabilities were under-confident.
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    issues = find_label_issues(given, probs)
    assert set(issues.rows) == set(flipped)
    assert all(issues.predicted == true[issues.rows]) and issues.scored_rows == 1000


@pytest.mark.slow  # A 2-fold run, then two more commands.
def test_report_finds_label_issues_and_train_excludes_them(tmp_path, tiny_data_dir):
    from kaggle_digits.training.run import train

    _, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=6, folds=2,
                                   batch_size=16, run_name="cv"), log=lambda _: None)
    result = run_cli("report.py", str(run_dir), "--label-issues")
    assert result.returncode == 0, result.stderr
    assert "likely label issues among 400 held-out rows" in result.stdout
    table = pd.read_csv(run_dir / "label_issues.csv")
    assert list(table.columns) == ["row", "line", "given", "predicted", "confidence",
                                   "train_sha256"]
    assert len(table) > 0 and (table["line"] == table["row"] + 2).all()
    assert (run_dir / "label_issues.png").is_file()
    assert 'alt="label_issues.png"' in (run_dir / "report.html").read_text()

    excluded = sorted(table["row"])
    trained = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                      str(tiny_data_dir), "--exclude-rows", str(run_dir / "label_issues.csv"),
                      "--run-name", "clean", "--output-dir", str(tmp_path / "runs"),
                      "--submissions-dir", str(tmp_path / "subs"))
    assert trained.returncode == 0, trained.stderr
    clean = tmp_path / "runs" / "clean"
    config = json.loads((clean / "config.json").read_text())
    metrics = json.loads((clean / "metrics.json").read_text())
    validation = set(np.load(clean / "val_indices.npy").tolist())
    assert config["exclude_rows"] == excluded
    assert metrics["excluded_rows"] == len(excluded) and metrics["val_rows"] == 80
    assert metrics["train_rows"] == 320 - len(set(excluded) - validation)

    bad = tmp_path / "bad.csv"
    bad.write_text("row\n3\nseven\n")
    refused = run_cli("train.py", "--arch", "mlp", "--data", str(tiny_data_dir),
                      "--exclude-rows", str(bad), "--output-dir", str(tmp_path / "r2"))
    assert_one_line_error(refused, str(bad), "line 3", "column 'row'")
    beyond = tmp_path / "beyond.csv"
    beyond.write_text("row\n400\n")
    refused = run_cli("train.py", "--arch", "mlp", "--data", str(tiny_data_dir),
                      "--exclude-rows", str(beyond), "--output-dir", str(tmp_path / "r2"))
    assert_one_line_error(refused, "has 400 rows", "row 400")
    assert not (tmp_path / "r2").exists()

    # The k-fold run of the same rows records what its fold models trained on, less the rows
    # left out (it recorded 320 whatever was excluded).
    kfold = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data", str(tiny_data_dir),
                    "--exclude-rows", str(run_dir / "label_issues.csv"), "--folds", "2",
                    "--parallel", "1", "--run-name", "kf", "--output-dir", str(tmp_path / "runs"),
                    "--submissions-dir", str(tmp_path / "subs"))
    assert kfold.returncode == 0, kfold.stderr
    kfold_metrics = json.loads((tmp_path / "runs" / "kf" / "metrics.json").read_text())
    assert kfold_metrics["train_rows"] == round(200 - len(excluded) / 2)

    # The file was made on this train.csv: another one, whose rows are other digits, is refused.
    other = tmp_path / "other"
    other.mkdir()
    train_text = (tiny_data_dir / "train.csv").read_text().splitlines()
    (other / "train.csv").write_text("\n".join([train_text[0], *reversed(train_text[1:])]) + "\n")
    (other / "test.csv").write_text((tiny_data_dir / "test.csv").read_text())
    moved = run_cli("train.py", "--arch", "mlp", "--data", str(other), "--exclude-rows",
                    str(run_dir / "label_issues.csv"), "--check")
    assert_one_line_error(moved, "label_issues.csv", "made on another train.csv")
    # A file without the SHA-256 is checked by its given labels, line by line.
    table.drop(columns="train_sha256").to_csv(tmp_path / "given.csv", index=False)
    moved = run_cli("train.py", "--arch", "mlp", "--data", str(other), "--exclude-rows",
                    str(tmp_path / "given.csv"), "--check")
    assert_one_line_error(moved, "given.csv", "line 2", "column 'given'")
    same = run_cli("train.py", "--arch", "mlp", "--data", str(tiny_data_dir), "--exclude-rows",
                   str(tmp_path / "given.csv"), "--check")
    assert same.returncode == 0, same.stderr


@pytest.mark.parametrize("text, message", [
    ("row\n3\n²\n", ["line 3", "column 'row'", "'²'"]),
    ("row\n①\n", ["line 2", "column 'row'"]),
    ("row\n٣\n", ["line 2", "column 'row'"]),  # int() would take it; a row number is ASCII.
    ("row,row\n3,4\n", ["line 1", "'row' appears more than once"]),
    ("row,given\n3,x\n", ["line 2", "column 'given'"]),
])
def test_exclude_row_files_are_refused_where_they_are_wrong(tmp_path, tiny_data_dir, text,
                                                             message):
    rows = tmp_path / "rows.csv"
    rows.write_text(text)
    result = run_cli("train.py", "--arch", "mlp", "--data", str(tiny_data_dir), "--exclude-rows",
                     str(rows), "--output-dir", str(tmp_path / "runs"))
    assert_one_line_error(result, str(rows), *message)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("which, message", [("all", "no rows at all"),
                                            ("sevens", "no 7s to train on")])
def test_excluding_every_row_or_every_row_of_a_digit_is_refused_before_a_run(
        tmp_path, tiny_data_dir, which, message):
    labels = pd.read_csv(tiny_data_dir / "train.csv", usecols=["label"])["label"]
    rows = labels.index if which == "all" else labels.index[labels == 7]
    (tmp_path / "rows.csv").write_text("row\n" + "\n".join(map(str, rows)) + "\n")
    for extra in ([], ["--folds", "2", "--parallel", "1"], ["--full", "--epochs", "1"]):
        result = run_cli("train.py", "--arch", "mlp", "--data", str(tiny_data_dir),
                         "--exclude-rows", str(tmp_path / "rows.csv"), *extra,
                         "--output-dir", str(tmp_path / "runs"))
        assert_one_line_error(result, "--exclude-rows", message)
        assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # Trains two 2-fold runs.
def test_label_issues_csv_is_not_written_when_train_csv_changed(tmp_path, tiny_data_dir):
    from kaggle_digits.training.run import train

    _, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1, folds=2,
                                   batch_size=32, run_name="cv"), log=lambda _: None)
    text = (tiny_data_dir / "train.csv").read_text()
    (tiny_data_dir / "train.csv").write_text(text.replace("\n0,", "\n1,", 1))
    result = run_cli("report.py", str(run_dir), "--label-issues")
    assert_one_line_error(result, "refusing to draw other images")
    assert not (run_dir / "label_issues.csv").exists()
