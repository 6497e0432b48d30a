import matplotlib.image
import numpy as np
import pandas as pd
from helpers import run_cli

from kaggle_digits.data.explore import plot_class_distribution, plot_sample_grid


def test_sample_grid_and_distribution_pictures(tmp_path):
    labels = np.arange(50) % 10
    images = np.zeros((50, 28, 28, 1), dtype=np.uint8)
    grid = matplotlib.image.imread(plot_sample_grid(images, labels, tmp_path / "grid.png"))
    assert grid.shape[:2] == (1000, 900)
    bars = plot_class_distribution(labels, tmp_path / "dist.png", predicted=labels[:20])
    assert matplotlib.image.imread(bars).shape[:2] == (450, 800)


def test_explore_script_writes_pictures_and_prints_checks(tmp_path, tiny_data_dir):
    submission = tmp_path / "sub.csv"
    pd.DataFrame({"ImageId": range(1, 61), "Label": [7] * 60}).to_csv(submission, index=False)
    result = run_cli("explore.py", "--data", str(tiny_data_dir), "--submission",
                     str(submission), "--out", str(tmp_path / "reports"))
    assert result.returncode == 0, result.stderr
    assert "missing values 0" in result.stdout and "shapes consistent (28, 28, 1)" in result.stdout
    assert "7:100.0%" in result.stdout
    for name in ("sample_digits.png", "class_distribution.png"):
        assert matplotlib.image.imread(tmp_path / "reports" / name).size > 0


def test_explore_script_rejects_a_bad_submission_without_writing(tmp_path, tiny_data_dir):
    submission = tmp_path / "sub.csv"
    pd.DataFrame({"ImageId": [1, 1], "Label": [3, 12]}).to_csv(submission, index=False)
    result = run_cli("explore.py", "--data", str(tiny_data_dir), "--submission",
                     str(submission), "--out", str(tmp_path / "reports"))
    assert result.returncode == 2 and "sub.csv" in result.stderr
    assert not (tmp_path / "reports").exists()
