"""A k-fold run's folds by number, asked of the run directory by every consumer: TTA scores each
row with the model that held it out, and a run with a fold missing is refused (naming the fold)
as an ensemble member, a teacher or a model to predict with, never paired by list position."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import assert_one_line_error, make_tiny_data_dir, run_cli, tiny_config

from kaggle_digits.data.load import load_competition_data
from kaggle_digits.evaluation.predict import rescore_with_tta
from kaggle_digits.runs.rundir import RunDir

pytestmark = pytest.mark.slow  # A 3-fold run, shared by the module.


@pytest.fixture(scope="module")
def kfold_run(tmp_path_factory):
    from kaggle_digits.training.run import train

    tmp_path = tmp_path_factory.mktemp("folds")
    data_dir = make_tiny_data_dir(tmp_path)
    _, run_dir = train(tiny_config(tmp_path, data_dir, arch="mlp", epochs=2, folds=3,
                                   run_name="cv3"), log=lambda _: None)
    return run_dir, data_dir


@pytest.fixture
def without_fold2(kfold_run, tmp_path):
    run_dir, data_dir = kfold_run
    damaged = tmp_path / "cv3-damaged"
    shutil.copytree(run_dir, damaged)
    shutil.rmtree(damaged / "folds" / "fold2")
    return damaged, data_dir


def test_the_run_maps_each_fold_number_to_its_model_and_rows(kfold_run):
    run_dir, _ = kfold_run
    run = RunDir(run_dir)
    folds = run.fold_models()
    assert [fold.number for fold in folds] == [1, 2, 3]
    fold_of_row = run.load_array("fold_of_row")
    for fold in folds:
        assert fold.model_path == run_dir / "folds" / f"fold{fold.number}" / "model.keras"
        assert (fold_of_row[fold.rows] == fold.number).all()
    assert sum(len(fold.rows) for fold in folds) == 400


def test_tta_rescoring_pairs_every_row_with_the_model_that_held_it_out(kfold_run):
    """One view is the run's own prediction: every out-of-fold row must come back as saved."""
    run_dir, data_dir = kfold_run
    run = RunDir(run_dir)
    val_probs, test_probs = rescore_with_tta(run, load_competition_data(data_dir), 1)
    np.testing.assert_allclose(val_probs, run.load_array("val_probs"), atol=1e-5)
    np.testing.assert_allclose(test_probs, run.load_array("test_probs"), atol=1e-5)


def test_an_ensemble_with_tta_refuses_a_kfold_member_missing_a_fold(without_fold2, kfold_run,
                                                                    tmp_path):
    damaged, _ = without_fold2
    out = tmp_path / "ens.csv"
    result = run_cli("ensemble.py", str(damaged), "--tta", "3", "--out", str(out))
    assert_one_line_error(result, "fold 2 of 3", "cv3-damaged")
    assert not out.exists()
    result = run_cli("ensemble.py", str(damaged), "--out", str(out))  # Without TTA too.
    assert_one_line_error(result, "fold 2 of 3")
    # --skip-missing leaves it out, by name, as any other damaged member.
    result = run_cli("ensemble.py", str(damaged), str(kfold_run[0]), "--skip-missing", "--out",
                     str(out))
    assert result.returncode == 0, result.stderr
    assert "leaving out" in result.stdout + result.stderr and "fold 2 of 3" in (
        result.stdout + result.stderr)
    assert out.exists()


def test_a_teacher_missing_a_fold_is_refused_before_a_student_run_exists(without_fold2,
                                                                         tmp_path):
    damaged, data_dir = without_fold2
    runs = tmp_path / "students"
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--folds", "3",
                     "--parallel", "1", "--teacher", str(damaged), "--data", str(data_dir),
                     "--output-dir", str(runs))
    assert_one_line_error(result, "teacher", "fold 2 of 3")
    assert not runs.exists()


def test_predicting_with_a_kfold_run_missing_a_fold_names_the_fold(without_fold2, tmp_path):
    damaged, data_dir = without_fold2
    result = run_cli("predict.py", "--model", str(damaged), "--input",
                     str(data_dir / "test.csv"), "--out", str(tmp_path / "p.csv"))
    assert_one_line_error(result, "fold 2 of 3")
    assert not (tmp_path / "p.csv").exists()
