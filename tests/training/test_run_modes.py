"""k-fold, full-data, TTA, resumed and deterministic runs, on tiny real data."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, START_UP_LINES, restore_ctrl_c, run_cli, tiny_config

from kaggle_digits.ensembles.combine import EnsembleError, combine, load_members
from kaggle_digits.evaluation.compare import compare_runs
from kaggle_digits.evaluation.predict import load_models, predict_images, predict_probs
from kaggle_digits.runs.io import load_npy
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import check_submission_file
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.fit import build_learning_rate
from kaggle_digits.training.run import resume, train


def quiet(_):
    pass


@pytest.mark.slow
def test_kfold_bookkeeping(tmp_path, tiny_data_dir):
    metrics, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="simple_cnn", epochs=1,
                                         folds=3), log=quiet)
    assert run_dir.name.endswith("-kfold3") and metrics["kind"] == "kfold"
    oof, labels = load_npy(run_dir / "val_probs.npy"), load_npy(run_dir / "val_labels.npy")
    fold_of_row = load_npy(run_dir / "fold_of_row.npy")
    assert oof.shape == (400, 10) and np.array_equal(load_npy(run_dir / "val_indices.npy"),
                                                      np.arange(400))
    assert sorted(np.bincount(fold_of_row)[1:]) == [133, 133, 134]
    assert np.allclose(oof.sum(axis=1), 1.0, atol=1e-4)  # Every row predicted exactly once.
    assert metrics["val_accuracy"] == pytest.approx(np.mean(oof.argmax(1) == labels))
    assert len(metrics["fold_val_accuracy"]) == 3 and metrics["val_rows"] == 400
    fold_tests = []
    for fold in (1, 2, 3):
        fold_dir = run_dir / "folds" / f"fold{fold}"
        np.testing.assert_allclose(load_npy(fold_dir / "val_probs.npy"), oof[fold_of_row == fold])
        fold_tests.append(load_npy(fold_dir / "test_probs.npy"))
        assert (fold_dir / "model.keras").exists() and (fold_dir / "history.csv").exists()
    test_probs = load_npy(run_dir / "test_probs.npy")
    np.testing.assert_allclose(test_probs, np.mean(fold_tests, axis=0), rtol=1e-5, atol=1e-6)
    assert check_submission_file(run_dir / "submission.csv", expected_rows=60) == []

    import shutil

    # A user's backup copy beside the folds broke every command that read the k-fold run.
    shutil.copytree(run_dir / "folds" / "fold1", run_dir / "folds" / "fold1.bak")
    models = load_models(run_dir)  # predict.py averages the fold models.
    images = pd.read_csv(tiny_data_dir / "test.csv").to_numpy("uint8").reshape(-1, 28, 28, 1)
    assert len(models) == 3
    np.testing.assert_allclose(predict_images(models, images), test_probs, rtol=1e-4, atol=1e-5)

    second = shutil.copytree(run_dir, tmp_path / "copy")  # A second run of the same folds.
    result = combine(load_members([run_dir, second]), "mean")  # Same folds: accepted.
    assert result.val_rows == 400
    _, holdout = train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1), log=quiet)
    with pytest.raises(EnsembleError, match="validated on different rows"):
        load_members([run_dir, holdout])


def test_full_data_run_trains_on_every_row_without_validation(tmp_path, tiny_data_dir):
    metrics, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="simple_cnn", epochs=2,
                                         full=True, lr_schedule="cosine"), log=quiet)
    assert metrics["kind"] == "full" and metrics["val_accuracy"] is None
    assert metrics["train_rows"] == 400 and metrics["epochs_run"] == 2
    assert not (run_dir / "val_probs.npy").exists()
    assert len(pd.read_csv(run_dir / "history.csv")) == 2
    assert check_submission_file(run_dir / "submission.csv", expected_rows=60) == []
    assert (run_dir / "report.html").exists() and (run_dir / "learning_curves.png").exists()
    _, skipped = compare_runs([run_dir])
    assert "full-data" in skipped[0].reason
    with pytest.raises(ValueError, match="no validation loss"):
        TrainConfig(arch="simple_cnn", full=True).resolved()  # simple_cnn defaults to plateau.


def test_tta_predictions_are_saved_and_recorded(tmp_path, tiny_data_dir):
    metrics, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="simple_cnn", epochs=1,
                                         tta=3), log=quiet)
    assert metrics["tta"] == 3
    [model] = load_models(run_dir)
    images = pd.read_csv(tiny_data_dir / "test.csv").to_numpy("uint8").reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(load_npy(run_dir / "test_probs.npy"),
                               predict_probs(model, images, tta=3), rtol=1e-4, atol=1e-5)
    assert not np.allclose(predict_probs(model, images, tta=1),
                           predict_probs(model, images, tta=3))


def start_training(tmp_path, data_dir, epochs):
    """train.py in its own process group, as a user's terminal would run it."""
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--arch", "simple_cnn",
               "--data", str(data_dir), "--epochs", str(epochs), "--patience", "100",
               "--lr-schedule", "cosine", "--batch-size", "16", "--run-name", "interrupted",
               "--output-dir", str(tmp_path / "runs"), "--submissions-dir",
               str(tmp_path / "subs")]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=restore_ctrl_c,
                            env={**os.environ, "KAGGLE_DIGITS_VERBOSE": ""})


def wait_for_epochs(run_dir, epochs, process, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((run_dir / "state.json").read_text()).get("epochs_done", 0) >= epochs:
                return
        except (OSError, json.JSONDecodeError):
            pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("training never reached the epoch to interrupt at")


EPOCHS = 8  # Cut after 2 (a Ctrl-C lands at the next batch end): room for several more.


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_interrupted_run_resumes_to_the_planned_epochs(how, tmp_path, tiny_data_dir):
    process = start_training(tmp_path, tiny_data_dir, epochs=EPOCHS)
    run_dir = tmp_path / "runs" / "interrupted"
    wait_for_epochs(run_dir, 2, process)
    os.killpg(process.pid, signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if how == "Ctrl-C":
        assert process.returncode == 130, stderr
        assert f"--resume {run_dir}" in stderr and "Traceback" not in stderr
        # TensorFlow started and said none of its start-up lines (shown when asked: test_runtime).
        assert not any(line in stderr for line in START_UP_LINES), stderr
        assert "KeyboardInterrupt" in (run_dir / "FAILED").read_text()
    done = json.loads((run_dir / "state.json").read_text())["epochs_done"]
    assert 2 <= done < EPOCHS and not (run_dir / "metrics.json").exists()

    result = run_cli("train.py", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == EPOCHS
    # It continued: only the epochs after the kill ran, and the schedule picked up where it was.
    assert f"continuing from epoch {done + 1} of {EPOCHS}" in result.stdout
    ran = [int(n) for n in re.findall(rf"^Epoch (\d+)/{EPOCHS}", result.stdout, re.MULTILINE)]
    assert ran == list(range(done + 1, EPOCHS + 1))
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(EPOCHS))
    np.testing.assert_allclose(history["learning_rate"], scheduled_rates(run_dir, 320, 16),
                               rtol=1e-5)
    assert not (run_dir / "FAILED").exists() and only_final_model(run_dir)
    assert check_submission_file(run_dir / "submission.csv", expected_rows=60) == []
    again = run_cli("train.py", "--resume", str(run_dir))
    assert again.returncode == 2 and "already finished" in again.stderr


def scheduled_rates(run_dir, train_rows, batch_size):
    """The learning rate an uninterrupted run logs at the end of each epoch."""
    config = RunDir(run_dir).read_config().resolved()
    steps = math.ceil(train_rows / batch_size)
    schedule = build_learning_rate(config, steps)
    return [float(schedule(steps * (epoch + 1))) for epoch in range(config.epochs)]


def only_final_model(run_dir):
    """No checkpoint or resume state is left once a run is finished."""
    leftovers = [p.name for p in run_dir.rglob("*") if p.suffix == ".keras"
                 and p.name != "model.keras" or p.name == "state.json"]
    return leftovers == []


@pytest.mark.slow
def test_kill_between_checkpoint_and_state_resumes_consistently(tmp_path, tiny_data_dir,
                                                                 monkeypatch):
    """A kill after epoch 3's checkpoint is on disk but before state.json names it: the resumed
    run must continue from epoch 2's consistent pair (model, optimizer step, schedule)."""
    import kaggle_digits.runs.rundir as rundir

    real_write = rundir.write_json_atomic

    def killed_before_the_third_record(path, payload):
        if Path(path).name == "state.json" and payload.get("epochs_done") == 3:
            raise KeyboardInterrupt
        return real_write(path, payload)

    monkeypatch.setattr(rundir, "write_json_atomic", killed_before_the_third_record)
    config = tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=6, patience=100,
                         lr_schedule="cosine", batch_size=16, run_name="cut")
    with pytest.raises(KeyboardInterrupt):
        train(config, log=quiet)
    run_dir = tmp_path / "runs" / "cut"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["epochs_done"] == 2 and (run_dir / state["checkpoint"]).exists()
    monkeypatch.setattr(rundir, "write_json_atomic", real_write)
    lines = []
    metrics, _ = resume(run_dir, log=lines.append)
    assert "cut: continuing from epoch 3 of 6" in lines
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == list(range(6)) and metrics["epochs_run"] == 6
    np.testing.assert_allclose(history["learning_rate"], scheduled_rates(run_dir, 320, 16),
                               rtol=1e-5)


def fail_once(monkeypatch, module, name, error, when=lambda *args, **kwargs: True):
    """Make ``module.name`` raise ``error`` the first time ``when`` holds, then behave."""
    real = getattr(module, name)
    state = {"failed": False}

    def wrapper(*args, **kwargs):
        if not state["failed"] and when(*args, **kwargs):
            state["failed"] = True
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return state


DISK_FULL = OSError(28, "No space left on device")


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["disk full writing the submission",
                                     "Ctrl-C while predicting the test rows",
                                     "k-fold fold dies before its fold record"])
def test_a_failure_after_the_last_epoch_resumes(failure, tmp_path, tiny_data_dir, monkeypatch):
    import kaggle_digits.runs.rundir as rundir
    import kaggle_digits.training.finish as training
    import kaggle_digits.training.fit as fit

    folds = 1
    if failure.startswith("disk full"):
        state = fail_once(monkeypatch, training, "write_submission", DISK_FULL)
    elif failure.startswith("Ctrl-C"):
        state = fail_once(monkeypatch, fit, "predict_probs", KeyboardInterrupt,
                          when=lambda model, images, tta=1: len(images) == 60)
    else:
        folds = 2
        state = fail_once(monkeypatch, rundir, "write_json_atomic", DISK_FULL,
                          when=lambda path, payload: Path(path).name == "fold.json"
                          and Path(path).parent.name == "fold2")
    config = tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=2, folds=folds,
                         run_name="late")
    with pytest.raises((OSError, KeyboardInterrupt)):
        train(config, log=quiet)
    assert state["failed"]
    run_dir = tmp_path / "runs" / "late"
    assert (run_dir / "FAILED").exists() and not (run_dir / "metrics.json").exists()

    result = run_cli("train.py", "--resume", str(run_dir))  # The failure above struck once.
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and not (run_dir / "FAILED").exists()
    for member in [run_dir] if folds == 1 else sorted(run_dir.glob("folds/fold*")):
        assert pd.read_csv(member / "history.csv")["epoch"].tolist() == [0, 1]
    assert "Epoch 1/2" not in result.stdout  # Nothing was trained again.
    assert check_submission_file(metrics["submission"], expected_rows=60) == []
    assert only_final_model(run_dir)


@pytest.mark.slow
def test_full_cli_on_real_data_ends_with_its_summary(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "mlp", "--full", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "full-data fit: 400 rows, 1 epochs" in result.stdout
    assert '-m "mlp full-data fit"' in result.stdout


@pytest.mark.slow
def test_resume_refuses_changed_data(tmp_path, tiny_data_dir):
    config = tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=3, run_name="interrupted")
    with pytest.raises(KeyboardInterrupt):  # In the second epoch: one is done.
        train(config, log=quiet, callbacks=(CtrlCAtBatch(2, epoch=1),))
    run_dir = tmp_path / "runs" / "interrupted"
    assert RunDir(run_dir).epochs_done() == 1
    with open(tiny_data_dir / "test.csv", "a") as handle:
        handle.write(",".join(["0"] * 784) + "\n")
    result = run_cli("train.py", "--resume", str(run_dir))
    assert result.returncode == 2 and "SHA-256 mismatch" in result.stderr


class CtrlCAtBatch(keras.callbacks.Callback):
    """Ctrl-C in the middle of an epoch (the first unless told), once."""

    def __init__(self, batch: int, epoch: int = 0):
        super().__init__()
        self.batch, self.epoch, self.fired, self.current = batch, epoch, False, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch and self.current == self.epoch and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("folds", [1, 2])
def test_a_run_resumed_before_its_first_epoch_ended_matches_an_uninterrupted_one(
        folds, tmp_path, tiny_data_dir):
    def config():
        return tiny_config(tmp_path, tiny_data_dir, arch="simple_cnn", epochs=1, folds=folds,
                           deterministic=True, augment=True)

    _, uninterrupted = train(config(), log=quiet)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 0 completed epoch"):
        train(config(), log=quiet, callbacks=(CtrlCAtBatch(2),))
    [cut] = [p for p in (tmp_path / "runs").iterdir() if p != uninterrupted]
    assert (cut / "FAILED").exists()
    _, resumed = resume(cut, log=quiet)
    np.testing.assert_allclose(load_npy(resumed / "val_probs.npy"),
                               load_npy(uninterrupted / "val_probs.npy"), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # Three fits.
def test_ema_runs_validate_and_save_the_average_and_resume_it(tmp_path, tiny_data_dir):
    """--ema 0.999 over 30 steps: the average stays near the first step's weights, so a run that
    validates and saves it is near chance where the raw weights learned. Cut in its second epoch
    and resumed, it must go on from the same average: Keras' SwapEMAWeights alone resumed training
    from the average, with the raw weights as the average (and so saved those)."""
    def config(**overrides):
        return tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=3, **overrides)

    plain, _ = train(config(), log=quiet)
    averaged, averaged_dir = train(config(ema_momentum=0.999), log=quiet)
    assert plain["val_accuracy"] > 0.5 and averaged["val_accuracy"] < 0.3  # Chance: 0.1.
    with pytest.raises(KeyboardInterrupt):
        train(config(ema_momentum=0.999, run_name="cut"), log=quiet,
              callbacks=(CtrlCAtBatch(2, epoch=1),))
    _, resumed = resume(tmp_path / "runs" / "cut", log=quiet)
    np.testing.assert_allclose(load_npy(resumed / "val_probs.npy"),
                               load_npy(averaged_dir / "val_probs.npy"), atol=0.02)


@pytest.mark.slow
def test_resume_takes_output_locations_and_nothing_else(tmp_path, tiny_data_dir):
    """A run that failed because of where its copy goes could never be resumed."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    first = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                    str(tiny_data_dir), "--run-name", "r", "--output-dir",
                    str(tmp_path / "runs"), "--submissions-dir", str(blocked / "subs"))
    assert first.returncode == 2 and "Traceback" not in first.stderr, first.stderr
    run_dir = tmp_path / "runs" / "r"
    assert (run_dir / "FAILED").exists() and not (run_dir / "metrics.json").exists()
    refused = run_cli("train.py", "--resume", str(run_dir), "--epochs", "3", "--seed", "1")
    assert refused.returncode == 2
    assert "only --data, --submissions-dir and where the folds run (--parallel, --executor) may " \
        "be given with it. Received: --epochs, --seed" in refused.stderr
    resumed = run_cli("train.py", "--resume", str(run_dir), "--submissions-dir",
                      str(tmp_path / "subs"))
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "subs" / "r.csv").exists() and (run_dir / "metrics.json").exists()
    assert RunDir(run_dir).read_config().submissions_dir == str(tmp_path / "subs")
    again = run_cli("train.py", "--resume", str(run_dir))
    assert again.returncode == 2 and "already finished" in again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flags, needle", [
    (["--lr", "inf"], "learning_rate must be a finite number"),
    (["--lr", "nan"], "learning_rate must be a finite number"),
    (["--patience", "-3"], "patience must be between 0 and 10000"),
    (["--epochs", "99999999999999999999"], "epochs must be between 1 and 10000"),
    (["--seed", "-1"], "seed must be between 0"),
    (["--val-split", "nan"], "val_split must be a finite number"),
    (["--rotate", "nan"], "rotate_deg must be a finite number"),
    (["--zoom", "1.5"], "zoom_fraction must be in [0, 0.9]. Received: zoom_fraction=1.5"),
    (["--run-name", "../../escaped"], "run_name must be a plain name, not a path"),
    (["--run-name", "/tmp/absolute"], "run_name must be a plain name, not a path"),
])
def test_out_of_range_options_are_one_line_and_create_nothing(flags, needle, tmp_path,
                                                               tiny_data_dir):
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--output-dir", str(tmp_path / "out" / "runs"),
                     *flags, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped").exists()


@pytest.mark.slow
def test_a_loss_that_becomes_nan_stops_the_run_with_what_to_change(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "3", "--optimizer", "sgd",
                     "--lr", "90", "--lr-schedule", "constant", "--data", str(tiny_data_dir),
                     "--run-name", "nan", "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "training loss became nan in epoch" in last and "lower the learning rate" in last
    assert "TrainingDiverged" in (tmp_path / "runs" / "nan" / "FAILED").read_text()
    assert not (tmp_path / "subs").exists()


@pytest.mark.slow
def test_deterministic_runs_repeat_exactly(tmp_path, tiny_data_dir):
    runs = [train(tiny_config(tmp_path, tiny_data_dir, arch="improved_cnn", epochs=1,
                              deterministic=True), log=quiet)[1] for _ in range(2)]
    assert RunDir(runs[0]).read_config().deterministic is True
    np.testing.assert_array_equal(load_npy(runs[0] / "val_probs.npy"),
                                  load_npy(runs[1] / "val_probs.npy"))


def test_unwritable_output_directory_is_one_line(tmp_path, tiny_data_dir):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the output directory should be")
    result = run_cli("train.py", "--arch", "mlp", "--epochs", "1", "--data",
                     str(tiny_data_dir), "--output-dir", str(blocker / "inner"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot create the output directory" in result.stderr.strip().splitlines()[-1]


def test_disk_full_during_a_run_marks_it_failed_and_leaves_no_submission(
        tmp_path, tiny_data_dir, monkeypatch):
    import errno

    import kaggle_digits.training.finish as training

    def full_disk(labels, path, expected_rows=None):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(training, "write_submission", full_disk)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1), log=quiet)
    [run_dir] = list((tmp_path / "runs").iterdir())
    assert "No space left on device" in (run_dir / "FAILED").read_text()
    assert not (run_dir / "submission.csv").exists() and not (tmp_path / "subs").exists()
    assert not list(run_dir.glob(".*.tmp*"))
    _, skipped = compare_runs([run_dir])
    assert skipped[0].reason.startswith("failed run (OSError")


@pytest.mark.slow
def test_fast_preset_sets_its_recipe_and_lets_options_override(tmp_path, tiny_data_dir):
    from kaggle_digits.training.config import PRESETS

    result = run_cli("train.py", "--preset", "fast", "--epochs", "3", "--batch-size", "32",
                     "--data", str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"))
    assert result.returncode == 0, result.stderr
    [run_dir] = list((tmp_path / "runs").iterdir())
    config = RunDir(run_dir).read_config()
    for key, value in PRESETS["fast"].items():  # The recipe, but what the user gave wins.
        assert getattr(config, key) == {"epochs": 3, "batch_size": 32}.get(key, value), key
    # It learns, even from 320 rows: a tenth is chance.
    assert RunDir(run_dir).read_metrics()["val_accuracy"] > 0.5


@pytest.mark.slow
def test_pseudo_labelled_test_rows_are_trained_on_but_never_validated(tmp_path, tiny_data_dir,
                                                                      monkeypatch):
    # k-fold: every fold adds the same test rows (a split's training rows are tested through
    # the recipe's second round in test_recipe.py).
    folds = 2
    import kaggle_digits.training.fit as fit

    batches = []

    class RecordedBatches(fit.DigitBatches):
        def __init__(self, images, labels, *args, **kwargs):
            batches.append((images, labels))
            super().__init__(images, labels, *args, **kwargs)

    monkeypatch.setattr(fit, "DigitBatches", RecordedBatches)
    keep = np.arange(60) % 3 == 0  # Every third test row, labelled 7.
    settings = dict(arch="mlp", epochs=1, folds=folds)
    plain, plain_dir = train(tiny_config(tmp_path, tiny_data_dir, **settings), log=quiet)
    labelled, labelled_dir = train(tiny_config(
        tmp_path, tiny_data_dir, pseudo_labels="".join("7" if k else "." for k in keep),
        **settings), log=quiet)
    test_images = pd.read_csv(tiny_data_dir / "test.csv").to_numpy("uint8").reshape(-1, 28, 28, 1)
    plain_batches, labelled_batches = batches[:folds], batches[folds:]
    for (plain_images, plain_labels), (images, labels) in zip(plain_batches, labelled_batches):
        # The fold's (or split's) labelled training rows, then the pseudo-labelled test rows.
        np.testing.assert_array_equal(images[:len(plain_images)], plain_images)
        np.testing.assert_array_equal(images[len(plain_images):], test_images[keep])
        assert list(labels[len(plain_labels):]) == [7] * 20
    assert labelled["pseudo_label_rows"] == 20 and plain["pseudo_label_rows"] == 0
    assert labelled["val_rows"] == plain["val_rows"]  # Validation: the same labelled rows.
    np.testing.assert_array_equal(load_npy(labelled_dir / "val_indices.npy"),
                                  load_npy(plain_dir / "val_indices.npy"))
    assert RunDir(labelled_dir).read_config().pseudo_labels.count("7") == 20  # Repeats from it.
