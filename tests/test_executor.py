"""Executors: jobs in this process, on a local Ray instance, and on a simulated Ray cluster."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_training import RUN_FILES

from kaggle_digits.config import TrainConfig
from kaggle_digits.data import load_competition_data
from kaggle_digits.executor import Job, LocalExecutor, RayExecutor, make_executor
from kaggle_digits.rundir import RunDir
from kaggle_digits.submission import check_submission_file


def mlp_job(tmp_path, data_dir, name, **overrides):
    values = dict(arch="mlp", data_dir=str(data_dir), epochs=1, batch_size=32,
                  output_dir=str(tmp_path / "runs"), submissions_dir=str(tmp_path / "subs"),
                  run_name=name)
    values.update(overrides)
    return Job(name, TrainConfig(**values))


def test_a_job_failing_for_its_own_reason_is_reported_and_the_others_go_on(tmp_path,
                                                                          tiny_data_dir):
    jobs = [mlp_job(tmp_path, tiny_data_dir, "bad", model_options={"filters": "8,8"}),
            mlp_job(tmp_path, tiny_data_dir, "good")]
    bad, good = LocalExecutor().run(jobs, log=lambda _: None)
    assert "mlp does not take option(s) filters" in bad.error and bad.metrics is None
    assert good.error is None and RunDir(good.run_dir).finished


def test_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="Received: executor='spark'"):
        make_executor("spark")


def assert_ordinary_run(run_dir, data_dir, subs_dir):
    """What a local run would have written: files, data directory, fingerprints, submission."""
    run = RunDir(run_dir)
    assert RUN_FILES <= {p.name for p in run.path.iterdir()}
    assert run.read_config().data_dir == str(data_dir)
    metrics = run.read_metrics()
    assert metrics["data_dir"] == str(data_dir) and metrics["is_sample"] is False
    assert metrics["data_fingerprint"] == load_competition_data(data_dir).fingerprint
    copy = subs_dir / f"{run.name}.csv"
    assert metrics["submission"] == str(copy) and copy.with_suffix(".json").exists()
    assert check_submission_file(copy, expected_rows=60) == []
    return metrics


@pytest.fixture(scope="module")
def ray_local():
    import ray

    executor = RayExecutor(cpus_per_job=1)
    yield executor
    executor.close()
    assert not ray.is_initialized()


def test_recipe_on_a_local_ray_instance_matches_a_local_run(ray_local, tmp_path, tiny_data_dir,
                                                            monkeypatch):
    from kaggle_digits import recipe

    monkeypatch.setitem(recipe.RECIPES, "tiny", ("two tiny MLPs", [
        ("a", "mlp", {"seed": 1, "epochs": 2}), ("b", "mlp", {"seed": 2, "epochs": 2})]))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    members, result, submission, _ = recipe.run_recipe("tiny", base, log=lambda _: None,
                                                       executor=ray_local)
    assert [m.name for m in members] == ["a", "b"]
    for member in members:
        metrics = assert_ordinary_run(member.run_dir, tiny_data_dir, tmp_path / "subs")
        assert metrics["epochs_run"] == 2 and metrics["val_accuracy"] > 0.5
    assert check_submission_file(submission, expected_rows=60) == []
    # The same recipe run here reuses the members the cluster trained.
    lines = []
    recipe.run_recipe("tiny", base, log=lines.append)
    assert sum("finished earlier, reused" in line for line in lines) == 2


def test_a_bad_job_on_ray_is_reported_and_the_others_go_on(ray_local, tmp_path, tiny_data_dir):
    jobs = [mlp_job(tmp_path, tiny_data_dir, "bad", model_options={"filters": "8,8"}),
            mlp_job(tmp_path, tiny_data_dir, "good")]
    bad, good = ray_local.run(jobs, log=lambda _: None)
    assert "mlp does not take option(s) filters" in bad.error
    assert good.error is None
    assert_ordinary_run(good.run_dir, tiny_data_dir, tmp_path / "subs")


def test_simulated_cluster_retries_a_killed_worker_from_its_last_epoch(tmp_path, tiny_data_dir):
    """Two nodes on this machine, no shared run directory: the node training the job is removed
    after its second epoch; Ray retries the job on the other node, which resumes from the
    snapshot this process holds instead of starting again."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    first = cluster.add_node(num_cpus=1)
    killed = []

    def kill_the_node_after_two_epochs(job, epochs_done):
        if epochs_done >= 2 and not killed:
            cluster.add_node(num_cpus=1)
            cluster.remove_node(first)
            killed.append(epochs_done)

    executor = RayExecutor(address=cluster.address, on_snapshot=kill_the_node_after_two_epochs)
    try:
        [result] = executor.run([mlp_job(tmp_path, tiny_data_dir, "long", epochs=12,
                                         batch_size=8, patience=100)], log=lambda _: None)
    finally:
        executor.close()
        ray.shutdown()
        cluster.shutdown()
    assert killed and result.error is None, result.error
    assert result.attempts == 2 and result.resumed_from[0] == 0
    assert result.resumed_from[1] >= killed[0]  # Not from zero.
    metrics = assert_ordinary_run(result.run_dir, tiny_data_dir, tmp_path / "subs")
    assert metrics["epochs_run"] == 12
    history = pd.read_csv(RunDir(result.run_dir).history_path)
    assert history["epoch"].tolist() == list(range(12))
    assert json.loads(RunDir(result.run_dir).config_path.read_text())["epochs"] == 12
