import pandas as pd
import pytest
from helpers import assert_one_line_error, run_cli

from kaggle_digits.orchestration.sweep import STUDIES, parse_grid, run_study
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig


def test_grid_expands_every_combination_with_typed_values():
    runs = parse_grid("epochs=5,10 filters=16-32-32,64-128-128 lr=0.01 augment=true",
                      "simple_cnn")
    assert len(runs) == 4
    label, arch, overrides = runs[0]
    assert arch == "simple_cnn" and overrides == {"epochs": 5, "filters": "16-32-32",
                                                  "learning_rate": 0.01, "augment": True}
    assert label == "epochs=5 filters=16-32-32 learning_rate=0.01 augment=True"
    with pytest.raises(ValueError, match="name=value1,value2"):
        parse_grid("epochs", "simple_cnn")


def test_overrides_go_to_config_fields_or_model_options():
    config = TrainConfig().override({"arch": "simple_cnn", "epochs": 3, "activation": "sigmoid"})
    assert config.epochs == 3 and config.model_options == {"activation": "sigmoid"}
    with pytest.raises(ValueError, match="neither a training setting nor an option of mlp"):
        TrainConfig().override({"arch": "mlp", "filters": "8-8-8"})
    with pytest.raises(ValueError, match="val_split"):
        TrainConfig().override({"arch": "mlp", "val_split": 2.0})


def test_named_studies_are_well_formed():
    for name, (description, runs) in STUDIES.items():
        assert description and runs
        for _, arch, overrides in runs:
            TrainConfig().override({"arch": arch, **overrides})
    labels = [label for label, _, _ in STUDIES["seed000-s6"][1]]
    assert len(labels) == 4 and "10 epochs" in labels


@pytest.mark.slow
def test_study_writes_a_comparison_table_and_records_failures(tmp_path, tiny_data_dir,
                                                              monkeypatch):
    from keras.src.applications import resnet

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...")

    monkeypatch.setattr(resnet.file_utils, "get_file", offline)
    runs = parse_grid("epochs=1 filters=8-16-16", "simple_cnn") + [
        ("2 folds", "mlp", {"epochs": 2, "folds": 2}), ("transfer", "resnet50", {"epochs": 1})]
    messages = []
    table, sweep_dir = run_study("tiny", runs, TrainConfig(data_dir=str(tiny_data_dir)),
                                 out_root=tmp_path, log=messages.append)
    assert list(table["run"]) == [label for label, _, _ in runs]
    assert table["val_accuracy"].iloc[:2].between(0, 1).all()
    # The k-fold run's folds were jobs of their own, then the run was assembled from them.
    assert any("[sweep tiny: run 2/3] 2 folds: 2 folds as separate jobs" in m for m in messages)
    folded = RunDir(table["run_dir"].iloc[1])
    assert folded.read_metrics()["val_rows"] == 400 and table["val_accuracy"].iloc[1] > 0.3
    assert [fold.read_fold_record()["fold"] for fold in folded.folds()] == [1, 2]
    assert "cannot download the ImageNet weights" in table["error"].iloc[2]
    csv = pd.read_csv(sweep_dir / "summary.csv")
    assert list(csv["parameters"].iloc[:2]) == list(table["parameters"].iloc[:2])
    markdown = (sweep_dir / "summary.md").read_text()
    assert "| epochs=1 filters=8-16-16 | simple_cnn |" in markdown and "failed:" in markdown
    assert "| 2 folds | mlp |" in markdown
    assert any("[sweep tiny: run 3/3]" in m for m in messages)
    assert len(list((sweep_dir / "runs").iterdir())) == 2


@pytest.mark.slow
def test_a_grid_of_full_data_runs_writes_its_summary(tmp_path, tiny_data_dir):
    """full=true runs have no validation score: the summary crashed formatting None."""
    result = run_cli("sweep.py", "--arch", "mlp", "--grid", "epochs=1 full=true",
                     "--data", str(tiny_data_dir), "--out-dir", str(tmp_path / "sweeps"),
                     "--parallel", "1")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    [sweep_dir] = (tmp_path / "sweeps").iterdir()
    row = (sweep_dir / "summary.md").read_text().splitlines()[-1]
    assert row.startswith("| epochs=1 full=True | mlp |") and "| – | – | 1 |" in row


def test_a_bad_value_in_a_grid_is_refused_before_any_run_trains(tmp_path, tiny_data_dir):
    """The sweep trained its first run, then crashed on the second's dropout with no summary."""
    result = run_cli("sweep.py", "--arch", "improved_cnn", "--grid", "epochs=1 dropout=0.1,1.5",
                     "--data", str(tiny_data_dir), "--out-dir", str(tmp_path / "sweeps"))
    assert_one_line_error(result, "run epochs=1 dropout_rate=1.5", "cannot be built")
    assert not (tmp_path / "sweeps").exists()
    checked = run_cli("sweep.py", "--arch", "improved_cnn", "--grid", "epochs=1 dropout=0.1,0.2",
                      "--data", str(tiny_data_dir), "--out-dir", str(tmp_path / "sweeps"),
                      "--check")
    assert checked.returncode == 0 and "check passed: 2 runs" in checked.stdout
    assert not (tmp_path / "sweeps").exists()
