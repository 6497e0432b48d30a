"""The run directory contract: lifecycle, records, checkpoints, and one owner of its names."""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, hold_lock

from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.runs.locks import RunInUse
from kaggle_digits.runs.rundir import DataMismatch, RunDir, RunStatus, differing_files
from kaggle_digits.training.config import TrainConfig, check_name


def test_lifecycle_from_new_to_finished(tmp_path):
    run = RunDir.create(tmp_path / "runs", "a")
    assert run.status is RunStatus.NEW and not run.exists
    run.write_config(TrainConfig(arch="mlp"))
    assert run.read_config().arch == "mlp" and run.exists
    run.write_state({"epochs_done": 1, "data_fingerprint": {"train.csv": "aa"}})
    assert run.status is RunStatus.IN_PROGRESS and run.resumable
    run.mark_failed("OSError: No space left on device\nmore detail")
    assert run.status is RunStatus.FAILED and run.resumable
    assert run.failure_reason() == "OSError: No space left on device"
    with pytest.raises(ValueError, match="a failed run \\(OSError"):
        run.require_finished()
    run.clear_failed()
    run.write_metrics({"val_accuracy": 0.5})
    run.remove_resume_files()
    assert run.status is RunStatus.FINISHED and not run.resumable
    assert run.read_metrics() == {"val_accuracy": 0.5}
    assert RunDir.create(tmp_path / "runs", "a").name == "a-1"  # Never reused.


def test_fingerprints_are_compared_by_value():
    recorded = {"train.csv": "a" * 64, "test.csv": "b" * 64}
    assert differing_files(recorded, dict(recorded)) == []
    assert differing_files(recorded, {**recorded, "test.csv": "c" * 64}) == ["test.csv"]
    assert differing_files(recorded, {"train.csv": "a" * 64}) == ["test.csv"]
    assert differing_files(recorded, {**recorded, "test.csv": "c" * 64},
                           names=("train.csv",)) == []


def test_check_data_reads_the_state_then_the_metrics(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.write_state({"data_fingerprint": {"train.csv": "a", "test.csv": "b"}})
    run.check_data({"train.csv": "a", "test.csv": "b"})
    with pytest.raises(DataMismatch, match="test.csv is not the file"):
        run.check_data({"train.csv": "a", "test.csv": "x"})
    run.write_metrics({"data_fingerprint": {"train.csv": "a", "test.csv": "x"}})
    run.check_data({"train.csv": "a", "test.csv": "x"})


def test_a_state_record_naming_a_missing_checkpoint_is_refused(tmp_path):
    run = RunDir.create(tmp_path, "r")
    with pytest.raises(ValueError, match="names checkpoint-epoch002.keras, which is missing"):
        run.checkpoint({"checkpoint": "checkpoint-epoch002.keras"}, "checkpoint")
    assert run.checkpoint({}, "best_checkpoint") is None


def test_arrays_and_folds(tmp_path):
    run = RunDir.create(tmp_path, "k")
    run.save_array("val_probs", np.eye(10, dtype=np.float32))
    assert run.has_array("val_probs") and run.load_array("val_probs").shape == (10, 10)
    with pytest.raises(ValueError, match="Received: kind='weights'"):
        run.save_array("weights", np.zeros(1))
    for number in (2, 1, 10):
        run.fold(number, create=True).write_state({"epochs_done": number})
    assert [fold.name for fold in run.folds()] == ["fold1", "fold2", "fold10"]
    assert run.epochs_done() == 13
    with pytest.raises(ValueError, match="no model.keras"):
        run.model_paths()


RUN_FILE_NAMES = {"config.json", "state.json", "metrics.json", "history.csv", "model.keras",
                  "submission.csv", "fold.json", "val_probs.npy", "val_labels.npy",
                  "val_indices.npy", "test_probs.npy", "fold_of_row.npy", "last.keras",
                  "best.keras", "classification_report.json", "confusion_matrix.png",
                  "errors.png", "learning_curves.png", "report.html"}


HELP_KEYWORDS = ("help", "description", "epilog")


def _code_strings(path: Path):
    """String literals of a module that code uses as names, paths or messages: not docstrings,
    and not the help texts of its command line (which tell users what a run holds)."""
    tree = ast.parse(path.read_text())
    prose = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr):
            prose.add(id(node.body[0].value))
        if isinstance(node, ast.keyword) and node.arg in HELP_KEYWORDS:
            prose.update(id(part) for part in ast.walk(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in prose:
            yield node.lineno, node.value


def test_no_run_directory_file_name_is_spelled_outside_rundir():
    offenders = []
    for folder in ("kaggle_digits", "scripts", "bench", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "rundir.py":
                continue
            for line, text in _code_strings(path):
                for name in RUN_FILE_NAMES:
                    if re.search(rf"(?<![\w.-]){re.escape(name)}", text) or text == "FAILED":
                        offenders.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert offenders == []


def test_a_run_held_by_another_process_is_refused_with_its_pid(tmp_path):
    run = RunDir.create(tmp_path / "runs", "a")
    holder = hold_lock(run.path)
    try:
        with pytest.raises(RunInUse, match=f"runs/a is in use by process {holder.pid}"):
            with run.lock():
                pass
        # A new run never takes a directory that another process holds, even one not made yet.
        assert RunDir.create(tmp_path / "runs", "b").name == "b"
        holder_b = hold_lock(tmp_path / "runs" / "c")
        try:
            with contextlib.ExitStack() as locks:
                assert RunDir.create(tmp_path / "runs", "c", locks).name == "c-1"
        finally:
            holder_b.communicate("")
    finally:
        holder.communicate("")
    with run.lock():  # Released when its holder ended; re-entrant within a process.
        with run.lock():
            assert (tmp_path / "runs" / ".a.lock").exists()
        assert (tmp_path / "runs" / ".a.lock").exists()
    assert not (tmp_path / "runs" / ".a.lock").exists()  # Removed on release.


@pytest.mark.parametrize("name", ["../x", "../../etc", "/tmp/abs", "a/b", "..", ".hidden",
                                  "", "a\\b", "tab\there", "del\x7fete",
                                  "evil\u202egnp.csv", "zero\u200bwidth"])
def test_names_that_would_leave_their_directory_are_refused(name):
    with pytest.raises(ValueError, match="must be a plain name, not a path"):
        check_name(name)
    with pytest.raises(ValueError, match="run_name must be a plain name"):
        TrainConfig(run_name=name).validate()
    with pytest.raises(ValueError, match="run_name must be a plain name"):
        Job("x", TrainConfig(run_name=name))


def test_a_symlink_or_another_spelling_of_a_held_run_is_the_same_lock(tmp_path):
    run = RunDir.create(tmp_path / "runs", "k")
    (tmp_path / "runs" / "klink").symlink_to(run.path)
    holder = hold_lock(run.path)
    try:
        for spelling in (tmp_path / "runs" / "klink", tmp_path / "runs" / "x" / ".." / "k"):
            with pytest.raises(RunInUse, match=f"in use by process {holder.pid}"):
                with RunDir(spelling).lock():
                    pass
    finally:
        holder.communicate("")
    # In one process, two spellings of one run are one re-entrant lock, not a refusal.
    with run.lock(), RunDir(tmp_path / "runs" / "klink").lock():
        assert [path.name for path in (tmp_path / "runs").glob(".*.lock")] == [".k.lock"]


def test_stray_entries_under_folds_are_not_members(tmp_path):
    run = RunDir.create(tmp_path, "k")
    for number in (2, 1, 10):
        run.fold(number, create=True)
    (run.path / "folds" / "fold1.bak").mkdir()
    (run.path / "folds" / "fold3.tmp").write_text("")
    (run.path / "folds" / "notes").mkdir()
    assert [fold.name for fold in run.folds()] == ["fold1", "fold2", "fold10"]
