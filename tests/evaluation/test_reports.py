import base64
import json
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from kaggle_digits.evaluation.plots import most_confused_pairs
from kaggle_digits.evaluation.reports import write_run_report


def hand_case():
    """Ten validation rows: digit 3 twice read as 5, digit 7 once as 1, the rest right."""
    labels = np.array([3, 3, 3, 5, 5, 7, 7, 1, 1, 0])
    predicted = np.array([5, 5, 3, 5, 5, 1, 7, 1, 1, 0])
    probs = np.full((10, 10), 0.01)
    probs[np.arange(10), predicted] = 0.91
    images = np.zeros((10, 28, 28, 1), dtype=np.uint8)
    return images, labels, probs


def test_report_numbers_match_a_hand_computed_case(tmp_path):
    images, labels, probs = hand_case()
    write_run_report(tmp_path, images, labels, probs)
    report = json.loads((tmp_path / "classification_report.json").read_text())
    assert report["accuracy"] == pytest.approx(0.7)
    assert report["3"]["recall"] == pytest.approx(1 / 3) and report["3"]["precision"] == 1.0
    assert report["5"]["precision"] == pytest.approx(0.5) and report["5"]["recall"] == 1.0
    assert report["1"]["precision"] == pytest.approx(2 / 3)
    assert report["most_confused"][0] == {"true": 3, "predicted": 5, "count": 2}
    assert report["confusion_matrix"][7][1] == 1
    text = (tmp_path / "classification_report.txt").read_text()
    assert "accuracy" in text and "macro avg" in text and "weighted avg" in text


def test_pictures_decode_with_sensible_sizes(tmp_path):
    images, labels, probs = hand_case()
    written = write_run_report(tmp_path, images, labels, probs)
    assert {p.name for p in written} == {"classification_report.txt",
                                         "classification_report.json", "confusion_matrix.png",
                                         "errors.png", "report.html"}
    confusion = matplotlib.image.imread(tmp_path / "confusion_matrix.png")
    gallery = matplotlib.image.imread(tmp_path / "errors.png")
    assert confusion.shape[:2] == (700, 750) and gallery.shape[1] >= 1000


def test_most_confused_pairs_are_ordered_by_count():
    confusion = np.zeros((10, 10), dtype=int)
    confusion[4, 9], confusion[7, 2], confusion[2, 2] = 5, 2, 50
    assert most_confused_pairs(confusion) == [(4, 9, 5), (7, 2, 2)]


def test_report_script_regenerates_a_run_and_refuses_changed_data(tmp_path, tiny_data_dir):
    from kaggle_digits.training.config import TrainConfig
    from kaggle_digits.training.run import train

    _, run_dir = train(TrainConfig(arch="simple_cnn", data_dir=str(tiny_data_dir), epochs=1,
                                   output_dir=str(tmp_path / "runs"),
                                   submissions_dir=str(tmp_path / "subs")), log=lambda _: None)
    for name in ("confusion_matrix.png", "errors.png", "classification_report.json"):
        assert (run_dir / name).exists()
        (run_dir / name).unlink()
    result = run_cli("report.py", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert (run_dir / "confusion_matrix.png").exists() and (run_dir / "errors.png").exists()
    with open(tiny_data_dir / "train.csv", "a") as handle:
        handle.write(",".join(["1"] + ["0"] * 784) + "\n")
    result = run_cli("report.py", str(run_dir))
    assert result.returncode == 2 and "SHA-256 mismatch" in result.stderr


def test_html_report_embeds_every_picture_and_shows_config_and_accuracy(tmp_path):
    images, labels, probs = hand_case()
    (tmp_path / "config.json").write_text(json.dumps({"arch": "simple_cnn", "epochs": 3}))
    (tmp_path / "metrics.json").write_text(json.dumps({"val_accuracy": 0.7, "val_loss": 0.5}))
    pd.DataFrame({"epoch": [0, 1], "accuracy": [0.5, 0.8], "loss": [1.0, 0.4],
                  "val_accuracy": [0.6, 0.7], "val_loss": [0.9, 0.5],
                  "learning_rate": [1e-3, 5e-4]}).to_csv(tmp_path / "history.csv", index=False)
    write_run_report(tmp_path, images, labels, probs)
    page = (tmp_path / "report.html").read_text()
    for name in ("learning_curves.png", "confusion_matrix.png", "errors.png"):
        embedded = re.search(rf'alt="{name}" src="data:image/png;base64,([^"]+)"', page)
        assert embedded, name
        assert base64.b64decode(embedded.group(1)) == (tmp_path / name).read_bytes()
    assert "70.0000%" in page and "simple_cnn" in page and "3 as 5 (2x)" in page
    # The headline as the command line says it: the interval and the rows behind it.
    assert re.search(rf"Validation accuracy <b>70\.0000% \(95% CI [0-9.]+%-[0-9.]+%, "
                     rf"{len(labels)} rows\)</b>", page)
    assert "<td>epochs</td><td>3</td>" in page


def test_a_moved_run_is_reported_with_data_or_the_default(tmp_path):
    """report.py had no --data for a run moved from where it trained, and a config recording
    no data directory (data_dir: null, older versions) was a TypeError."""
    import shutil

    from helpers import ROOT, make_tiny_data_dir

    runs = tmp_path / "runs"
    shutil.copytree(ROOT / "tests" / "fixtures" / "runs-d1e0a75", runs)  # Trained elsewhere.
    data_dir = make_tiny_data_dir(tmp_path)  # The same bytes, somewhere else now.
    result = run_cli("report.py", str(runs / "cnn-holdout"))
    assert result.returncode == 2 and "has no train.csv" in result.stderr
    result = run_cli("report.py", str(runs / "cnn-holdout"), "--data", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert (runs / "cnn-holdout" / "confusion_matrix.png").is_file()
    config = json.loads((runs / "cnn-holdout-s7" / "config.json").read_text())
    (runs / "cnn-holdout-s7" / "config.json").write_text(json.dumps({**config,
                                                                     "data_dir": None}))
    (tmp_path / "data").rename(tmp_path / "digit-recognizer")
    (tmp_path / "data").mkdir()
    (tmp_path / "digit-recognizer").rename(tmp_path / "data" / "digit-recognizer")
    result = run_cli("report.py", str(runs / "cnn-holdout-s7"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
