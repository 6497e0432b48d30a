"""Run directories and .keras files written before the package moved into subpackages (at
commit d1e0a75, 2026-12-07: tests/fixtures/runs-d1e0a75, made on the tiny data cut) still load,
ensemble and predict through the commands."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import ROOT, make_tiny_data_dir, run_cli

from kaggle_digits.runs.rundir import RunDir

FIXTURE = ROOT / "tests" / "fixtures" / "runs-d1e0a75"


@pytest.fixture
def older_runs(tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE, runs)
    return runs


def test_older_holdout_runs_ensemble(older_runs, tmp_path):
    out = tmp_path / "e.csv"
    result = run_cli("ensemble.py", str(older_runs / "cnn-holdout"),
                     str(older_runs / "cnn-holdout-s7"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["val_rows"] == 80 and len(record["members"]) == 2


def test_an_older_kfold_run_ensembles_and_its_fold_models_predict(older_runs, tmp_path):
    run = RunDir(older_runs / "cnn-kfold2")
    assert [fold.number for fold in run.fold_models()] == [1, 2]
    result = run_cli("ensemble.py", str(run.path), "--out", str(tmp_path / "k.csv"))
    assert result.returncode == 0, result.stderr
    data_dir = make_tiny_data_dir(tmp_path)  # The same bytes the runs were predicted for.
    out = tmp_path / "p.csv"
    result = run_cli("predict.py", "--model", str(run.path), "--input",
                     str(data_dir / "test.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == run.submission_path.read_text()
