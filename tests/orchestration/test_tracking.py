"""--track: runs, ensembles and studies logged to MLflow, and read back from its store."""

from __future__ import annotations

import sys

import pytest
from helpers import assert_one_line_error, run_cli

mlflow = pytest.importorskip("mlflow")
pytestmark = pytest.mark.slow  # Real MLflow stores, trained runs.


def read_back(uri: str, name: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs(client.get_experiment_by_name("kaggle-digits").experiment_id,
                               filter_string=f"tags.mlflow.runName = '{name}'")
    return client, run


def test_a_tracked_run_logs_params_epochs_and_artifacts(tmp_path, tiny_data_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "3", "--data",
                     str(tiny_data_dir), "--run-name", "tracked", "--output-dir",
                     str(tmp_path / "runs"), "--submissions-dir", str(tmp_path / "subs"),
                     "--track", "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "tracked: MLflow run" in result.stdout and f"mlflow ui --backend-store-uri {uri}" \
        in result.stdout
    client, run = read_back(uri, "tracked")
    assert run.data.params["arch"] == "mlp" and run.data.params["epochs"] == "3"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [point.step for point in history] == [0, 1, 2]
    assert run.data.metrics["final_val_accuracy"] > 0.3  # It learned (chance: 0.1).
    assert run.data.metrics["final_val_accuracy_ci95_low"] < run.data.metrics[
        "final_val_accuracy"]
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "confusion_matrix.png", "model.keras", "config.json"} <= artifacts
    assert (tmp_path / "mlartifacts").is_dir()  # Beside the store, in the working folder.


def test_a_tracked_ensemble_logs_its_record_and_members(tmp_path, tiny_data_dir):
    from helpers import tiny_config

    from kaggle_digits.ensembles.combine import combine, load_members, write_ensemble
    from kaggle_digits.orchestration.tracking import log_ensemble
    from kaggle_digits.training.run import train

    runs = [train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1, seed=seed),
                  log=lambda _: None)[1] for seed in (1, 2)]
    members = load_members(runs)
    submission, record = write_ensemble(members, combine(members), tmp_path / "e.csv")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_ensemble(record, submission, uri)
    client, parent = read_back(uri, "e")
    assert parent.data.params["members"] == "2" and "val_accuracy" in parent.data.metrics
    children = client.search_runs(parent.info.experiment_id,
                                  filter_string=f"tags.mlflow.parentRunId = "
                                                f"'{parent.info.run_id}'")
    assert sorted(child.info.run_name for child in children) == sorted(r.name for r in runs)
    assert {item.path for item in client.list_artifacts(parent.info.run_id)} == {"e.csv",
                                                                                 "e.json"}


def test_without_mlflow_track_is_one_line_and_nothing_runs(tmp_path, tiny_data_dir,
                                                           monkeypatch, capsys):
    from kaggle_digits.cli import train

    monkeypatch.setitem(sys.modules, "mlflow", None)  # As if the extra were not installed.
    code = train.main(["--arch", "mlp", "--epochs", "1", "--data", str(tiny_data_dir),
                       "--output-dir", str(tmp_path / "runs"), "--track"])
    assert code == 2
    assert "--track needs MLflow: pip install -e '.[track]'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_tracked_sweep_is_a_parent_run_with_its_runs(tmp_path, tiny_data_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("sweep.py", "--arch", "mlp", "--grid", "epochs=1,2", "--data",
                     str(tiny_data_dir), "--out-dir", str(tmp_path / "sweeps"), "--parallel",
                     "1", "--track", "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [sweep_dir] = (tmp_path / "sweeps").iterdir()
    client, parent = read_back(uri, sweep_dir.name)
    children = client.search_runs(parent.info.experiment_id,
                                  filter_string=f"tags.mlflow.parentRunId = "
                                                f"'{parent.info.run_id}'")
    assert sorted(child.data.params["epochs"] for child in children) == ["1", "2"]
    assert {"summary.md", "summary.csv"} <= {item.path for item in
                                             client.list_artifacts(parent.info.run_id)}


def test_a_tracked_kfold_run_logs_every_folds_model(tmp_path, tiny_data_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--folds", "2",
                     "--parallel", "1", "--data", str(tiny_data_dir), "--run-name", "cv",
                     "--output-dir", str(tmp_path / "runs"), "--submissions-dir",
                     str(tmp_path / "subs"), "--track", "--tracking-uri", uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    client, run = read_back(uri, "cv")
    for fold in ("fold1", "fold2"):
        assert [item.path for item in client.list_artifacts(run.info.run_id, f"folds/{fold}")
                ] == [f"folds/{fold}/model.keras"]
    assert "model.keras" not in {item.path for item in client.list_artifacts(run.info.run_id)}


def test_a_uri_whose_database_driver_is_missing_is_refused_before_any_work(tmp_path,
                                                                          tiny_data_dir):
    import importlib.util

    if importlib.util.find_spec("psycopg2") or importlib.util.find_spec("psycopg"):
        pytest.skip("a PostgreSQL driver is installed here")
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data", str(tiny_data_dir),
                     "--output-dir", str(tmp_path / "runs"), "--track", "--tracking-uri",
                     "postgresql://bob:s3cret@127.0.0.1:1/ml", cwd=tmp_path)
    assert_one_line_error(result, "tracking URI postgresql://bob:***@127.0.0.1:1/ml",
                          "database driver")
    assert "s3cret" not in result.stdout + result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_failed_tracking_shows_the_ensemble_first_and_never_the_password(
        tmp_path, tiny_data_dir, monkeypatch):
    from helpers import tiny_config

    from kaggle_digits.training.run import train

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    runs = [str(train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1, seed=seed),
                      log=lambda _: None)[1]) for seed in (1, 2)]
    out = tmp_path / "e.csv"
    result = run_cli("ensemble.py", *runs, "--out", str(out), "--track", "--tracking-uri",
                     "http://bob:s3cret@127.0.0.1:9/", cwd=tmp_path)
    assert_one_line_error(result, f"the ensemble was written ({out}) but not tracked",
                          "http://bob:***@127.0.0.1:9/")
    assert "ensemble (mean) validation accuracy" in result.stdout and out.is_file()
    assert "s3cret" not in result.stdout + result.stderr


def test_uris_are_printed_masked():
    from kaggle_digits.orchestration.tracking import masked

    assert masked("postgresql://bob:s3cret@db:5432/ml") == "postgresql://bob:***@db:5432/ml"
    assert masked("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    assert masked("https://token:x@host/") == "https://token:***@host/"


@pytest.mark.parametrize("uri, secret", [
    ("mysql://user:S3cr/et@db:3306/ml", "S3cr/et"),
    ("postgresql://bob:a?b#c@db/ml", "a?b#c"),
    ("postgresql://bob@db/ml?password=hunter2&sslmode=require", "hunter2"),
    ("postgresql://db/ml?sslpassword=p4ss", "p4ss"),
    ("https://host/api?token=t0ken", "t0ken"),
])
def test_passwords_with_url_characters_and_in_the_query_are_masked(uri, secret):
    from kaggle_digits.orchestration.tracking import _scrubbed, masked

    shown = masked(uri)
    assert secret not in shown and "***" in shown
    assert secret not in _scrubbed(f"could not connect to {uri} ({secret} refused)", uri)
