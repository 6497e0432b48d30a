import json

import matplotlib.image
import pytest
from helpers import run_cli

from kaggle_digits.evaluation.compare import compare_runs, format_markdown, write_comparison


def make_run(root, name, accuracy, arch="simple_cnn", **extra):
    run_dir = root / name
    run_dir.mkdir(parents=True)
    metrics = {"arch": arch, "parameters": 1234, "val_accuracy": accuracy, "val_loss": 0.1,
               "epochs_run": 5, "time_per_epoch_s": 2.0, "train_time_s": 10.0, "is_sample": False,
               **extra}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def test_table_is_sorted_by_accuracy_and_skips_unusable_runs(tmp_path):
    runs = [make_run(tmp_path, "a", 0.98), make_run(tmp_path, "b", 0.995, arch="improved_cnn"),
            make_run(tmp_path, "c", 0.97)]
    failed = tmp_path / "failed"  # Stopped before its metrics.json: failed, not finished.
    failed.mkdir()
    (failed / "state.json").write_text("{}")
    (failed / "FAILED").write_text("KeyboardInterrupt: \n")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    full = make_run(tmp_path, "full", None)
    table, skipped = compare_runs([*runs, failed, unfinished, full, tmp_path / "nothing"])
    assert list(table["run"]) == ["b", "a", "c"]
    reasons = {run.path.name: run.reason for run in skipped}
    assert reasons["failed"].startswith("failed run (KeyboardInterrupt")
    assert "no metrics.json" in reasons["unfinished"]
    assert "full-data" in reasons["full"] and reasons["nothing"] == "not a directory"
    markdown = format_markdown(table)
    assert markdown.splitlines()[2].startswith("| b | improved_cnn | 1,234 | 99.5000% |")


def test_written_files_and_script(tmp_path):
    runs = [make_run(tmp_path / "runs", name, acc) for name, acc in (("x", 0.9), ("y", 0.95))]
    table, _ = compare_runs(runs)
    written = write_comparison(table, tmp_path / "out")
    assert [p.name for p in written] == ["comparison.md", "comparison.csv", "comparison.png"]
    assert (tmp_path / "out" / "comparison.csv").read_text().splitlines()[1].startswith("y,")
    assert matplotlib.image.imread(tmp_path / "out" / "comparison.png").shape[1] == 900

    result = run_cli("compare.py", *map(str, runs), str(tmp_path / "runs" / "missing"),
                     "--out", str(tmp_path / "script"))
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "| y |" in result.stdout
    assert (tmp_path / "script" / "comparison.png").exists()


@pytest.mark.parametrize("contents", [None, "{not json"])
def test_script_fails_when_nothing_is_comparable(tmp_path, contents):
    run_dir = tmp_path / "broken"
    run_dir.mkdir()
    if contents:
        (run_dir / "metrics.json").write_text(contents)
    result = run_cli("compare.py", str(run_dir), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "none of the given directories" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_real_runs_get_intervals_and_a_paired_test_against_the_best(tmp_path, tiny_data_dir):
    from kaggle_digits.training.config import TrainConfig
    from kaggle_digits.training.run import train

    runs = [train(TrainConfig(arch="mlp", data_dir=str(tiny_data_dir), epochs=epochs,
                              output_dir=str(tmp_path / "runs"),
                              submissions_dir=str(tmp_path / "subs"), run_name=f"e{epochs}"),
                  log=lambda _: None)[1] for epochs in (1, 3)]
    table, _ = compare_runs(runs)
    best, other = table.iloc[0], table.iloc[1]
    assert best["mcnemar_p_vs_best"] == 1.0  # A run against itself.
    assert 0.0 < other["mcnemar_p_vs_best"] <= 1.0
    assert best["ci95_low"] < best["val_accuracy"] < best["ci95_high"]
    assert "95% CI" in format_markdown(table).splitlines()[0]


def test_runs_with_the_same_folder_name_are_told_apart(tmp_path, tiny_data_dir):
    """Every sweep names its runs 01-<arch>: a table keyed by folder name compared the wrong
    runs (p = 1 shown where the real p-value was tiny)."""
    import numpy as np

    from kaggle_digits.evaluation.metrics import mcnemar_exact
    from kaggle_digits.runs.rundir import RunDir

    labels = np.arange(400) % 10
    good = np.eye(10)[labels]
    poor = np.eye(10)[np.where(np.arange(400) % 3 == 0, (labels + 1) % 10, labels)]
    paths = []
    for sweep, probs, accuracy in (("sweep-a", good, 1.0), ("sweep-b", poor, 0.665)):
        run_dir = make_run(tmp_path / sweep, "01-simple_cnn", accuracy, val_rows=400,
                           split={"val_indices_sha256": "same-rows"})
        RunDir(run_dir).save_array("val_probs", probs)
        RunDir(run_dir).save_array("val_labels", labels)
        paths.append(run_dir)
    table, skipped = compare_runs(paths[::-1])
    assert skipped == [] and len(table) == 2
    assert list(table["run"]) == [str(paths[0]), str(paths[1])]
    expected = mcnemar_exact(good.argmax(1) == labels, poor.argmax(1) == labels)["p_value"]
    assert expected < 1e-30
    assert table["mcnemar_p_vs_best"].tolist() == [1.0, pytest.approx(expected)]
