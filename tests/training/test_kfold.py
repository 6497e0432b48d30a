"""The folds of a k-fold run as jobs of their own, and the run assembled from them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from helpers import hold_lock, run_cli, tiny_config

from kaggle_digits import UserError
from kaggle_digits.ensembles import recipe
from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.orchestration.executors.local import LocalExecutor
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.kfold import train_fold


def kfold_config(tmp_path, data_dir, **overrides):
    return tiny_config(tmp_path, data_dir, **{"arch": "mlp", "folds": 2, "epochs": 1,
                                               "run_name": "k", **overrides})


@pytest.mark.slow  # Several fits.
def test_fold_jobs_then_the_run_assembles_them_without_fitting_again(tmp_path, tiny_data_dir):
    config = kfold_config(tmp_path, tiny_data_dir)
    run = RunDir(tmp_path / "runs" / "k")
    run.fold(1, create=True)
    holder = hold_lock(run.fold(1).path)  # Another process trains fold 1.
    try:
        [busy] = LocalExecutor().run([Job("k fold 1/2", config, fold=1)], log=lambda _: None)
    finally:
        holder.communicate("")
    assert f"is in use by process {holder.pid}" in busy.error
    assert run.fold(1).read_fold_record() is None

    results = LocalExecutor().run([Job(f"k fold {n}/2", config, fold=n) for n in (1, 2)],
                                  log=lambda _: None)
    assert [r.error for r in results] == [None, None] and not run.finished
    assert [r.metrics["fold"] for r in results] == [1, 2]
    models = {n: run.fold(n).model_path.stat().st_mtime_ns for n in (1, 2)}
    lines = []
    [whole] = LocalExecutor().run([Job("k", config)], log=lines.append)
    assert whole.error is None and run.finished
    assert not any(line.startswith("fold ") and "/2" in line and "validation" not in line
                   for line in lines)  # Nothing fitted again ...
    assert {n: run.fold(n).model_path.stat().st_mtime_ns for n in (1, 2)} == models
    metrics = run.read_metrics()  # ... and the run is what a one-process k-fold run writes.
    assert metrics["kind"] == "kfold" and metrics["val_rows"] == 400
    assert metrics["fold_val_accuracy"] == [r.metrics["val_accuracy"] for r in results]
    assert sorted(np.unique(run.load_array("fold_of_row"))) == [1, 2]

    [again] = LocalExecutor().run([Job("k fold 2/2", config, fold=2)], log=lambda _: None)
    assert again.reused and again.metrics["fold"] == 2


def test_a_fold_job_refuses_a_run_of_other_settings_and_a_fold_out_of_range(tmp_path,
                                                                            tiny_data_dir):
    config = kfold_config(tmp_path, tiny_data_dir)
    with pytest.raises(ValueError, match="fold in 1..folds"):
        train_fold(config, 3, log=lambda _: None)
    [first] = LocalExecutor().run([Job("k fold 1/2", config, fold=1)], log=lambda _: None)
    assert first.error is None
    other = kfold_config(tmp_path, tiny_data_dir, learning_rate=0.5)
    [refused] = LocalExecutor().run([Job("k fold 2/2", other, fold=2)], log=lambda _: None)
    assert "holds a k-fold run with other settings (learning_rate)" in refused.error
    assert RunDir(tmp_path / "runs" / "k").fold(2).read_fold_record() is None


@pytest.mark.slow
def test_train_cli_trains_folds_side_by_side_and_resumes_the_unfinished_ones(tmp_path,
                                                                            tiny_data_dir):
    """The local executor's child processes (every --parallel N: folds, recipe members, sweep
    and search runs) on the user's path: two at once, their results back in the command."""
    runs, subs = tmp_path / "runs", tmp_path / "subs"
    result = run_cli("train.py", "--arch", "mlp", "--folds", "2", "--parallel", "2", "--epochs",
                     "8", "--batch-size", "8", "--patience", "100", "--data", str(tiny_data_dir),
                     "--output-dir", str(runs), "--submissions-dir", str(subs), "--run-name",
                     "cv")
    assert result.returncode == 0, result.stderr
    assert "2 of 2 folds to train, each a job of its own" in result.stdout
    assert "out-of-fold accuracy" in result.stdout and str(subs / "cv.csv") in result.stdout
    metrics = RunDir(runs / "cv").read_metrics()
    assert metrics["kind"] == "kfold" and metrics["val_rows"] == 400
    assert metrics["val_accuracy"] > 0.3 and metrics["epochs_run"] == 8  # Chance: 0.1.
    spans = [(dt.datetime.fromisoformat(r["started"]), dt.datetime.fromisoformat(r["finished"]))
             for r in (fold.read_fold_record() for fold in RunDir(runs / "cv").folds())]
    (start1, end1), (start2, end2) = spans
    assert start2 < end1 and start1 < end2  # The two folds trained at the same time.

    # Stopped after its first fold: --resume trains only the second, then assembles the run.
    config = kfold_config(tmp_path, tiny_data_dir, run_name="cut")
    LocalExecutor().run([Job("cut fold 1/2", config, fold=1)], log=lambda _: None)
    fold1 = RunDir(runs / "cut").fold(1).model_path.stat().st_mtime_ns
    resumed = run_cli("train.py", "--resume", str(runs / "cut"), "--parallel", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 folds to train" in resumed.stdout
    assert RunDir(runs / "cut").fold(1).model_path.stat().st_mtime_ns == fold1
    assert RunDir(runs / "cut").read_metrics()["val_rows"] == 400


@pytest.mark.slow  # Several fits.
def test_a_recipe_member_whose_folds_all_trained_is_assembled_on_the_next_run(
        tmp_path, tiny_data_dir, monkeypatch):
    from kaggle_digits.training import kfold as training

    monkeypatch.setitem(recipe.RECIPES, "folds-tiny", recipe.Recipe("one 2-fold MLP", (
        ("mlp-kfold2", "mlp", {"folds": 2, "epochs": 1}),)))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    finish = training.finish_run

    def disk_full(*args, **kwargs):
        raise UserError("no space left for the submission")

    monkeypatch.setattr(training, "finish_run", disk_full)
    with pytest.raises(recipe.RecipeIncomplete, match="could not be assembled from its folds"):
        recipe.run_recipe("folds-tiny", base, log=lambda _: None)
    run = RunDir(tmp_path / "runs" / "recipe-folds-tiny" / "mlp-kfold2")
    assert not run.finished and all(f.read_fold_record() for f in run.folds())
    models = [f.model_path.stat().st_mtime_ns for f in run.folds()]
    monkeypatch.setattr(training, "finish_run", finish)
    [member], result, _, _ = recipe.run_recipe("folds-tiny", base, log=lambda _: None)
    assert run.finished and result.val_rows == 400
    assert [f.model_path.stat().st_mtime_ns for f in run.folds()] == models  # Not refitted.


def test_train_cli_refuses_bad_fold_options_before_a_run_directory_exists(tmp_path,
                                                                         tiny_data_dir):
    runs = tmp_path / "runs"
    common = ("--data", str(tiny_data_dir), "--output-dir", str(runs), "--submissions-dir",
              str(tmp_path / "subs"))
    bad = run_cli("train.py", "--arch", "mlp", "--folds", "2", "--parallel", "2", "--filters",
                  "8,8", *common)
    assert bad.returncode == 2 and "mlp does not take option(s) filters" in bad.stderr
    assert not runs.exists() or not any(runs.iterdir())
    ray_alone = run_cli("train.py", "--arch", "mlp", "--executor", "ray", *common)
    assert ray_alone.returncode == 2
    assert "--executor ray spreads the folds of --folds K" in ray_alone.stderr
