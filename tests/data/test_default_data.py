"""The README's path with no --data: the data where fetch.py puts it (data/digit-recognizer/
under the working directory), found once, recorded in every run, and read by every step after
(fold jobs, their assembly, --resume, a recipe's members)."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import make_tiny_data_dir, run_cli

from kaggle_digits.ensembles import recipe
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import check_submission_file
from kaggle_digits.training.config import TrainConfig


@pytest.fixture
def fetched(tmp_path) -> Path:
    """A working directory holding the tiny data where fetch.py leaves the competition's."""
    (tmp_path / "data").mkdir()
    made = make_tiny_data_dir(tmp_path / "data")
    made.rename(tmp_path / "data" / "digit-recognizer")
    return tmp_path


def test_a_config_records_the_default_data_directory_it_will_read(fetched, monkeypatch):
    monkeypatch.chdir(fetched)
    config = TrainConfig().with_data_dir()
    assert config.data_dir == str(fetched / "data" / "digit-recognizer")
    assert TrainConfig(arch="mlp").resolved().data_dir == config.data_dir
    monkeypatch.chdir(fetched / "data")  # Nothing there: the bundled sample, named as such.
    from kaggle_digits.data.load import SAMPLE_DATA_DIR, resolve_data_dir

    assert TrainConfig().with_data_dir().data_dir == str(SAMPLE_DATA_DIR)
    assert resolve_data_dir(str(SAMPLE_DATA_DIR)) == (SAMPLE_DATA_DIR, True)


@pytest.mark.slow  # Two fold jobs, their assembly, then a second command.
def test_the_ensemble_recipe_of_k_fold_members_finishes_without_data(fetched, monkeypatch,
                                                                     capsys):
    """`make ensemble` after fetch.py: the recipe trained every fold, then its assembly of the
    first member resumed it with no data directory (TypeError), and so did a second run."""
    monkeypatch.setitem(recipe.RECIPES, "tiny-kfold", recipe.Recipe("one 2-fold MLP", (
        ("mlp-kfold2", "mlp", {"folds": 2, "epochs": 1}),)))
    from kaggle_digits.cli import ensemble

    monkeypatch.chdir(fetched)
    assert ensemble.main(["--recipe", "tiny-kfold", "--parallel", "1"]) == 0
    out = capsys.readouterr().out
    assert "submission: submissions/recipe-tiny-kfold-mean.csv" in out
    assert check_submission_file(fetched / "submissions" / "recipe-tiny-kfold-mean.csv",
                                 expected_rows=60) == []
    member = RunDir(fetched / "runs" / "recipe-tiny-kfold" / "mlp-kfold2")
    assert member.read_config().data_dir == str(fetched / "data" / "digit-recognizer")
    assert member.read_metrics()["is_sample"] is False
    assert ensemble.main(["--recipe", "tiny-kfold", "--parallel", "1"]) == 0
    assert "finished earlier, reused" in capsys.readouterr().out


@pytest.mark.slow  # A k-fold run, a full-data run, a resume.
def test_train_folds_full_and_resume_find_the_fetched_data(fetched):
    data = str(fetched / "data" / "digit-recognizer")
    # In this process (--parallel 1): child processes get the config resolved here, and
    # tests/training/test_kfold.py runs them.
    folds = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--folds", "2", "--parallel",
                    "1", "--run-name", "cv", cwd=fetched)
    assert folds.returncode == 0, folds.stderr
    assert "NOTE: trained on the bundled sample" not in folds.stdout
    cv = RunDir(fetched / "runs" / "cv")
    assert cv.read_config().data_dir == data and cv.read_metrics()["data_dir"] == data
    assert cv.read_metrics()["val_rows"] == 400

    full = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--full", "--run-name", "all",
                   cwd=fetched)
    assert full.returncode == 0, full.stderr
    assert RunDir(fetched / "runs" / "all").read_metrics()["train_rows"] == 400

    # A k-fold run whose folds were recorded by an earlier version, with no data directory in
    # its config, and not yet assembled: --resume with no --data reads the default and says so.
    old = fetched / "runs" / "old"
    shutil.copytree(cv.path, old)
    (old / "metrics.json").unlink()
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "data_dir": None,
                                                 "run_name": "old"}))
    RunDir(old).write_state({"data_fingerprint": cv.read_metrics()["data_fingerprint"],
                             "is_sample": False})
    resumed = run_cli("train.py", "--resume", "runs/old", cwd=fetched)
    assert resumed.returncode == 0, resumed.stderr
    assert "out-of-fold accuracy" in resumed.stdout
    assert RunDir(old).read_config().data_dir == data
