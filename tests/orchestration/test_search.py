"""Optuna search: a tiny space on tiny data, a pruned trial, a stopped and continued study."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import assert_one_line_error, hold_lock, make_tiny_data_dir, run_cli

from kaggle_digits.orchestration.search import parse_space, run_search
from kaggle_digits.training.config import TrainConfig

pytestmark = pytest.mark.slow  # Optuna studies of trained trials.


def test_space_syntax_and_its_errors():
    params = parse_space("lr=log:1e-4:1e-2 dropout=float:0.1:0.5 epochs=int:2:4 "
                         "filters=choice:16-32-32|32-64-64 augment=choice:true|false")
    assert [p.name for p in params] == ["learning_rate", "dropout_rate", "epochs", "filters",
                                        "augment"]
    assert params[4].choices == (True, False)
    for bad in ("lr=1e-4:1e-2", "lr=log:1e-2:1e-4", "lr=log:0:1", "dropout=float:a:b"):
        with pytest.raises(ValueError, match="Received"):
            parse_space(bad)


def test_search_prunes_a_poor_trial_and_continues_its_study(tmp_path, tiny_data_dir):
    import optuna

    base = TrainConfig(data_dir=str(tiny_data_dir), epochs=4, batch_size=16, patience=100,
                       deterministic=True)
    space = parse_space("lr=log:1e-7:3e-3")
    out = tmp_path / "searches"
    storage = f"sqlite:///{(out / 'tiny' / 'study.db').resolve()}"
    (out / "tiny").mkdir(parents=True)
    study = optuna.create_study(study_name="tiny", storage=storage, direction="minimize")
    for rate in (2e-3, 3e-3):  # Two good trials set the median ...
        study.enqueue_trial({"learning_rate": rate})
    table, search_dir = run_search("tiny", "mlp", base, 2, space, out, log=lambda _: None)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE"]
    assert (search_dir / "best_config.json").exists() and (search_dir / "trials.png").exists()

    study.enqueue_trial({"learning_rate": 1e-7})  # ... that a learning rate this low cannot meet.
    lines = []
    table, _ = run_search("tiny", "mlp", base, 1, space, out, log=lines.append)
    assert "2 earlier trial(s), 1 more" in lines[0]  # The stopped study was continued.
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert table["epochs_run"].iloc[2] < 4 and any("pruned after epoch" in line for line in lines)
    summary = pd.read_csv(search_dir / "summary.csv")
    assert summary["state"].tolist() == ["COMPLETE", "COMPLETE", "PRUNED"]
    best = table[table["state"] == "COMPLETE"]["val_accuracy"].max()
    assert f"validation accuracy {best:.4%}" in (search_dir / "summary.md").read_text()

    repeat = run_cli("train.py", "--config", str(search_dir / "best_config.json"),
                     "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"))
    assert repeat.returncode == 0, repeat.stderr
    assert f"validation accuracy: {best:.4%}" in repeat.stdout  # The best trial, repeated.


def test_search_cli_end_to_end(tmp_path, tiny_data_dir):
    result = run_cli("search.py", "--arch", "mlp", "--trials", "2", "--epochs", "2",
                     "--space", "lr=log:1e-3:1e-2 dropout=float:0.1:0.3", "--data",
                     str(tiny_data_dir), "--out-dir", str(tmp_path / "searches"),
                     "--name", "cli", "--parallel", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "# Search cli (mlp)" in result.stdout and "Best: trial" in result.stdout
    bad = run_cli("search.py", "--arch", "mlp", "--space", "lr=1e-3", cwd=tmp_path)
    assert bad.returncode == 2 and "Received: 'lr=1e-3'" in bad.stderr


def test_an_interrupted_trial_is_told_and_its_run_continues_next_time(tmp_path, tiny_data_dir,
                                                                       monkeypatch):
    """A Ctrl-C'd trial stayed RUNNING forever and its half-trained run was abandoned."""
    from kaggle_digits.orchestration.executors import pruning as search

    real_epoch_end = search.LocalPruning.on_epoch_end

    def ctrl_c_after_the_first_epoch(self, epoch, logs=None):
        if self.trial.number == 0 and epoch == 0:
            raise KeyboardInterrupt
        return real_epoch_end(self, epoch, logs)

    monkeypatch.setattr(search.LocalPruning, "on_epoch_end", ctrl_c_after_the_first_epoch)
    base = TrainConfig(data_dir=str(tiny_data_dir), epochs=3, batch_size=32)
    space = parse_space("lr=log:1e-3:3e-3")
    lines = []
    with pytest.raises(KeyboardInterrupt):
        run_search("cut", "mlp", base, 2, space, tmp_path, log=lines.append)
    assert any("trial(s) 0 interrupted" in line for line in lines)
    run = tmp_path / "cut" / "runs" / "trial-000"
    assert json.loads((run / "state.json").read_text())["epochs_done"] == 1

    lines.clear()
    table, _ = run_search("cut", "mlp", base, 1, space, tmp_path, log=lines.append)
    assert list(table["state"]) == ["FAIL", "COMPLETE"]
    assert any("trial 0 was interrupted; its run trial-000 continues" in line for line in lines)
    assert any(line.startswith("trial-000: continuing from epoch 2 of 3") for line in lines)
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 3
    assert not (tmp_path / "cut" / "runs" / "trial-001").exists()

    table, _ = run_search("cut", "mlp", base, 1, space, tmp_path, log=lines.append)
    assert list(table["state"]) == ["FAIL", "COMPLETE", "COMPLETE"]  # Continued only once.
    assert (tmp_path / "cut" / "runs" / "trial-002" / "metrics.json").exists()


def test_a_search_name_that_is_a_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="name must be a plain name, not a path"):
        run_search("../escape", "mlp", TrainConfig(), 1, out_root=tmp_path / "s")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "s").exists()


def search_args(tmp_path, data_dir, name, *extra):
    return ("search.py", "--arch", "mlp", "--trials", "1", "--epochs", "1", "--space",
            "lr=log:1e-3:1e-2", "--data", str(data_dir), "--out-dir", str(tmp_path / "s"),
            "--name", name, "--parallel", "1", *extra)


def test_the_same_search_again_draws_new_parameters_on_the_data_it_was_run_on(tmp_path,
                                                                              tiny_data_dir):
    """The sampler was seeded alike on every call, so a repeated command drew trial 0's
    parameters again; and a continuation on other data or another split mixed its scores."""
    for _ in range(2):
        result = run_cli(*search_args(tmp_path, tiny_data_dir, "again"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    rates = pd.read_csv(tmp_path / "s" / "again" / "summary.csv")["param:learning_rate"]
    assert len(rates) == 2 and rates[0] != rates[1]

    (tmp_path / "other").mkdir()
    other = make_tiny_data_dir(tmp_path / "other")
    with open(other / "test.csv", "a") as handle:
        handle.write(",".join(["0"] * 784) + "\n")
    result = run_cli(*search_args(tmp_path, other, "again"), cwd=tmp_path)
    assert_one_line_error(result, "study again was run on other data_fingerprint")
    result = run_cli(*search_args(tmp_path, tiny_data_dir, "again", "--seed", "7"),
                     cwd=tmp_path)
    assert_one_line_error(result, "study again was run on other split")
    assert len(pd.read_csv(tmp_path / "s" / "again" / "summary.csv")) == 2


def test_a_configuration_error_leaves_no_trial_running(tmp_path, tiny_data_dir):
    result = run_cli("search.py", "--arch", "mlp", "--trials", "1", "--space",
                     "kernel_size=int:3:5", "--data", str(tiny_data_dir), "--out-dir",
                     str(tmp_path / "s"), "--name", "bad", "--parallel", "1", cwd=tmp_path)
    assert_one_line_error(result, "mlp does not take option(s) kernel_size")
    # Refused with the space, before a study or trial exists (one was left FAILED, or for
    # errors found later, RUNNING for good).
    assert not (tmp_path / "s" / "bad").exists()


def test_a_second_search_of_the_same_study_at_once_is_one_line(tmp_path, tiny_data_dir):
    (tmp_path / "s").mkdir()
    holder = hold_lock(tmp_path / "s" / "both")  # The first search, still running.
    try:
        result = run_cli(*search_args(tmp_path, tiny_data_dir, "both"), cwd=tmp_path)
    finally:
        holder.stdin.close()
        holder.wait()
    assert_one_line_error(result, "is in use by process")


def test_a_search_space_with_infinite_bounds_is_refused(tmp_path):
    for bad in ("lr=log:1e-4:inf", "dropout=float:-inf:0.5", "lr=log:nan:1"):
        result = run_cli("search.py", "--arch", "mlp", "--space", bad, "--out-dir",
                         str(tmp_path / "s"), cwd=tmp_path)
        assert_one_line_error(result, "must be finite numbers", repr(bad))
    assert not (tmp_path / "s").exists()
