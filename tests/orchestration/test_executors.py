"""Executors: jobs in this process, on a local Ray instance, and on a simulated Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from helpers import ROOT, RUN_FILES, hold_lock, restore_ctrl_c, run_cli, wait_until_gone

from kaggle_digits.data.load import load_competition_data
from kaggle_digits.orchestration.executors import make_executor
from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.orchestration.executors.local import LocalExecutor
from kaggle_digits.orchestration.executors.ray_executor import (
    RayExecutor,
    remove_abandoned_work_dirs,
)
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import check_submission_file
from kaggle_digits.training.config import TrainConfig

pytestmark = pytest.mark.slow  # Ray, child processes.
# The Ray tests share one worker and so one local Ray instance (under --dist loadgroup): two
# instances side by side on two cores ran each job at half speed.
on_the_ray_worker = pytest.mark.xdist_group("ray")


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


ENDLESS_JOBS = """
import os, sys, time
from types import SimpleNamespace
from kaggle_digits.orchestration.executors import local

def endless(job, log=print):
    print(os.getpid(), flush=True)
    time.sleep(600)

if __name__ == "__main__":
    local.run_job = endless  # The pool's children run this in place of a fit.
    local.LocalExecutor(parallel=2).run([SimpleNamespace(callbacks=None)] * 2)
"""


def test_the_jobs_of_a_command_killed_outright_stop_instead_of_training_on(tmp_path):
    """SIGTERM (kill, a job scheduler) or kill -9 to train.py --parallel N: its children went
    on training their jobs to the end under the jobs' locks; now they leave within a second or
    two, and their runs resume as after a kill -9 (test_training_modes)."""
    script = tmp_path / "endless.py"
    script.write_text(ENDLESS_JOBS)
    command = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    children = [int(command.stdout.readline()) for _ in range(2)]
    command.terminate()
    _, stderr = command.communicate(timeout=30)
    assert wait_until_gone(children, timeout=15) == []
    for child in children:
        assert (f"job process {child} stopped: the command that started it (pid {command.pid}) "
                "is gone; --resume continues its runs") in stderr


def test_a_job_never_deletes_or_trains_a_run_another_process_holds(tmp_path, tiny_data_dir):
    """run_job deleted a directory that another process had just created (no config yet)."""
    job = mlp_job(tmp_path, tiny_data_dir, "busy")
    job.run_dir.mkdir(parents=True)
    holder = hold_lock(job.run_dir)
    try:
        [result] = LocalExecutor().run([job], log=lambda _: None)
    finally:
        holder.communicate("")
    assert f"is in use by process {holder.pid}" in result.error
    assert job.run_dir.is_dir() and not RunDir(job.run_dir).exists  # Untouched.


def test_a_finished_job_is_reused_never_deleted_and_never_mistaken(tmp_path, tiny_data_dir):
    job = mlp_job(tmp_path, tiny_data_dir, "done")
    [first] = LocalExecutor().run([job], log=lambda _: None)
    model_time = (job.run_dir / "model.keras").stat().st_mtime_ns
    lines = []
    [again] = LocalExecutor().run([mlp_job(tmp_path, tiny_data_dir, "done")], log=lines.append)
    assert again.reused and again.metrics == first.metrics
    assert (job.run_dir / "model.keras").stat().st_mtime_ns == model_time
    assert any("finished earlier; reused" in line for line in lines)
    [other] = LocalExecutor().run([mlp_job(tmp_path, tiny_data_dir, "done", epochs=2)],
                                  log=lambda _: None)
    assert "holds a finished run with other settings (epochs)" in other.error
    assert (job.run_dir / "model.keras").stat().st_mtime_ns == model_time


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


def test_a_killed_ray_jobs_work_dir_is_removed_by_the_next_job(tmp_path):
    """Ctrl-C cancels Ray jobs by killing their workers, and a crashed node's workers die: no
    ``finally`` runs there, and each suite run left three job copies (12-20 MB each) in /tmp."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    abandoned = tmp_path / f"kaggle-digits-job-{gone}-x1"
    alive = tmp_path / f"kaggle-digits-job-{os.getpid()}-x2"
    unnamed = tmp_path / "kaggle-digits-job-x3"  # No process id in the name: not ours to judge.
    for path in (abandoned, alive, unnamed):
        (path / "runs").mkdir(parents=True)
        (path / "runs" / "model.keras").write_bytes(b"x")
    assert remove_abandoned_work_dirs(tmp_path) == [abandoned]
    assert not abandoned.exists() and alive.is_dir() and unnamed.is_dir()


@pytest.fixture(scope="module")
def ray_local():
    import ray

    executor = RayExecutor(cpus_per_job=1)
    yield executor
    executor.close()
    assert not ray.is_initialized()


@on_the_ray_worker
def test_the_ray_tests_share_one_worker(request):
    """Under pytest 9.2 xdist's groups were silently ignored (pytest-dev/pytest-xdist#1386): the
    Ray tests then started a Ray instance on each worker, both at half speed."""
    if getattr(request.config.option, "loadgroup", False):  # An xdist worker (not -n 0).
        assert request.node.nodeid.endswith("@ray")


@on_the_ray_worker
def test_recipe_on_a_local_ray_instance_matches_a_local_run(ray_local, tmp_path, tiny_data_dir,
                                                            monkeypatch):
    """A 2-fold member, whose folds are Ray jobs of their own (a plain job on Ray is the good
    job of the next test)."""
    from kaggle_digits.ensembles import recipe

    monkeypatch.setitem(recipe.RECIPES, "tiny", recipe.Recipe("a 2-fold MLP", [
        ("b", "mlp", {"seed": 2, "epochs": 2, "folds": 2})]))
    base = TrainConfig(data_dir=str(tiny_data_dir), output_dir=str(tmp_path / "runs"),
                       submissions_dir=str(tmp_path / "subs"))
    lines = []
    [member], result, submission, _ = recipe.run_recipe("tiny", base, log=lines.append,
                                                        executor=ray_local)
    assert any("b: 2 folds as separate jobs" in line for line in lines)
    folded = RunDir(member.run_dir)
    metrics = folded.read_metrics()
    assert metrics["kind"] == "kfold" and metrics["val_rows"] == 400
    assert metrics["val_accuracy"] > 0.3 and metrics["data_dir"] == str(tiny_data_dir)
    assert metrics["data_fingerprint"] == load_competition_data(tiny_data_dir).fingerprint
    assert [f.read_fold_record()["fold"] for f in folded.folds()] == [1, 2]
    assert all(f.model_path.exists() and f.read_state() is None for f in folded.folds())
    assert (tmp_path / "subs" / "b.json").exists()
    assert check_submission_file(submission, expected_rows=60) == []
    # The same recipe run here reuses the member the cluster trained.
    lines = []
    recipe.run_recipe("tiny", base, log=lines.append)
    assert sum("finished earlier, reused" in line for line in lines) == 1


@on_the_ray_worker
def test_a_bad_job_on_ray_is_reported_and_the_others_go_on(ray_local, tmp_path, tiny_data_dir):
    jobs = [mlp_job(tmp_path, tiny_data_dir, "bad", model_options={"filters": "8,8"}),
            mlp_job(tmp_path, tiny_data_dir, "good")]
    bad, good = ray_local.run(jobs, log=lambda _: None)
    assert "mlp does not take option(s) filters" in bad.error
    assert good.error is None
    assert_ordinary_run(good.run_dir, tiny_data_dir, tmp_path / "subs")


@on_the_ray_worker
def test_search_trials_run_in_parallel_on_ray(ray_local, tmp_path, tiny_data_dir):
    from kaggle_digits.orchestration.search import parse_space, run_search

    base = TrainConfig(data_dir=str(tiny_data_dir), epochs=2, batch_size=32)
    table, search_dir = run_search("ray", "mlp", base, 2, parse_space("lr=log:1e-3:3e-3"),
                                   tmp_path / "searches", executor=ray_local,
                                   log=lambda _: None)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE"]
    assert (search_dir / "best_config.json").exists()
    for trial in (0, 1):
        assert_ordinary_run(search_dir / "runs" / f"trial-{trial:03d}", tiny_data_dir,
                            search_dir / "submissions")


@on_the_ray_worker
def test_ctrl_c_cancels_ray_jobs_and_leaves_resumable_runs(ray_local, tmp_path, tiny_data_dir):
    """train.py's folds as Ray jobs, cut by Ctrl-C and resumed here. The command joins the
    tests' Ray instance as a driver would join a cluster (a Ray start of its own cost ~20 s;
    starting one is covered above)."""
    import ray

    ray_local.run([], log=lambda _: None)  # Started, if no test above started it.
    run_dir = tmp_path / "runs" / "cut"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--arch", "mlp", "--folds",
               "2", "--epochs", "12", "--batch-size", "16", "--patience", "100",
               "--data", str(tiny_data_dir), "--run-name", "cut",
               "--output-dir", str(tmp_path / "runs"), "--submissions-dir", str(tmp_path / "subs"),
               "--executor", "ray", "--ray-address", ray.get_runtime_context().gcs_address]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=restore_ctrl_c)
    deadline = time.monotonic() + 240
    while not any(RunDir(p).epochs_done() >= 1 for p in run_dir.glob("folds/fold*")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "cancelled" in stdout and f"--resume {run_dir}" in stderr.splitlines()[-1], stderr
    started = [fold for fold in RunDir(run_dir).folds() if fold.resumable]
    assert started and not RunDir(run_dir).finished
    again = run_cli("train.py", "--resume", str(run_dir), "--parallel", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for fold in started:  # Resumed where the cluster left it, not trained from scratch.
        assert pd.read_csv(fold.history_path)["epoch"].tolist() == list(range(12))
    assert "continuing from epoch" in again.stdout, again.stdout
    assert RunDir(run_dir).read_metrics()["val_rows"] == 400


@on_the_ray_worker
def test_simulated_cluster_retries_a_killed_worker_from_its_last_epoch(tmp_path, tiny_data_dir):
    """Two nodes on this machine, no shared run directory: the node training the job is removed
    after its second epoch and another joins; the job is retried there and resumes from the
    snapshot this process holds instead of starting again. The node goes before the new one
    joins (which takes seconds), so the job cannot finish on it in between."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # The local instance of the tests above: this one joins the cluster.
    # Health checks each second (default 3 s, 5 misses): a crashed node is found dead in ~4 s
    # instead of ~15 (the test: 50 -> 42 s); one that is alive misses three only if it stalls 9 s.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": {
        "health_check_period_ms": 1000, "health_check_timeout_ms": 3000,
        "health_check_failure_threshold": 3}})
    first = cluster.add_node(num_cpus=1)
    killed = []

    def kill_the_node_after_two_epochs(job, epochs_done):
        if epochs_done >= 2 and not killed:
            cluster.remove_node(first, allow_graceful=False)  # A crash, not a drain.
            killed.append(epochs_done)
            cluster.add_node(num_cpus=1)

    executor = RayExecutor(address=cluster.address, on_snapshot=kill_the_node_after_two_epochs)
    try:
        [result] = executor.run([mlp_job(tmp_path, tiny_data_dir, "long", epochs=8,
                                         batch_size=8, patience=100)], log=lambda _: None)
    finally:
        executor.close()
        ray.shutdown()
        cluster.shutdown()
    assert killed and result.error is None, result.error
    assert result.attempts == 2 and result.resumed_from[0] == 0
    assert result.resumed_from[1] >= killed[0]  # Not from zero.
    metrics = assert_ordinary_run(result.run_dir, tiny_data_dir, tmp_path / "subs")
    assert metrics["epochs_run"] == 8
    history = pd.read_csv(RunDir(result.run_dir).history_path)
    assert history["epoch"].tolist() == list(range(8))
    assert json.loads(RunDir(result.run_dir).config_path.read_text())["epochs"] == 8
