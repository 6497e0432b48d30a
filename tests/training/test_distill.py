"""Distillation: soft targets from teacher models that never saw the rows a student is judged on."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import assert_one_line_error, run_cli, tiny_config

from kaggle_digits.models.losses import DigitAccuracy, SoftTargetCrossentropy, training_loss
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.distill import soft_targets
from kaggle_digits.training.fit import member_targets


def test_soft_targets_mix_label_and_softened_teacher():
    teacher = np.array([[0.90, 0.08] + [0.0025] * 8, [0.02, 0.60, 0.38] + [0.0] * 7])
    labels = np.array([0, 2])  # The teacher is wrong on the second row.
    targets = soft_targets(labels, teacher, weight=0.5, temperature=1.0)
    assert targets.dtype == np.float32 and np.allclose(targets.sum(axis=1), 1.0)
    assert list(targets.argmax(axis=1)) == [0, 2]  # Half the label keeps it the likeliest class.
    assert targets[0, 1] == pytest.approx(0.04) and targets[1, 2] == pytest.approx(0.69)
    assert np.allclose(soft_targets(labels, teacher, 1.0, 1.0), teacher, atol=1e-6)
    warm = soft_targets(labels, teacher, 1.0, 3.0)
    assert warm[0, 0] < teacher[0, 0] and warm[0, 5] > teacher[0, 5]  # Softer, same order.
    assert list(warm.argsort(axis=1)[:, -1]) == [0, 1]


def test_the_students_loss_and_accuracy_take_soft_targets_and_integer_labels():
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=6).astype("float32")
    labels = np.array([0, 1, 2, 3, 4, probs[5].argmax()])
    targets = soft_targets(labels, probs, 0.3, 1.0)
    loss = SoftTargetCrossentropy(label_smoothing=0.1)
    expected = -(targets * np.log(probs)).sum(axis=1).mean()
    assert float(loss(targets, probs)) == pytest.approx(expected, rel=1e-5)
    smoothed = training_loss(0.1)  # Validation rows: the smoothed loss a teacher reports.
    assert float(loss(labels, probs)) == pytest.approx(float(smoothed(labels, probs)), rel=1e-5)
    right = np.mean(probs.argmax(axis=1) == labels)
    for y_true in (labels, targets):
        accuracy = DigitAccuracy()
        accuracy.update_state(y_true, probs)
        assert float(accuracy.result()) == pytest.approx(right)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).label_smoothing == 0.1


def test_settings_are_checked_where_they_are_read(tmp_path):
    for bad, message in ((dict(distill_weight=float("nan")), "distill_weight must be a finite"),
                         (dict(distill_weight=0.0), "distill_weight must be in"),
                         (dict(distill_temperature=-1.0), "distill_temperature must be in"),
                         (dict(teacher="runs/x"), "teacher must be a list"),
                         (dict(teacher=["runs/x"], pseudo_labels="1"), "exclude each other")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad).resolved()


def test_a_resumed_member_trains_on_the_targets_it_started_with(tmp_path, tiny_data_dir):
    from kaggle_digits.data.load import load_competition_data

    data = load_competition_data(tiny_data_dir)
    member = RunDir(tmp_path / "member")
    member.path.mkdir()
    saved = soft_targets(data.train_labels[:300], np.full((300, 10), 0.1), 0.5, 1.0)
    member.save_array("teacher_targets", saved)
    config = tiny_config(tmp_path, tiny_data_dir, teacher=[str(tmp_path / "gone")])
    targets = member_targets(config, data, np.arange(300), np.arange(300, 400), member, print)
    assert np.array_equal(targets, saved)  # The teacher is gone; its targets were kept.


@pytest.mark.slow  # Four small fits.
def test_train_cli_distils_kfold_and_full_students_and_refuses_a_leaking_one(tmp_path,
                                                                            tiny_data_dir):
    runs = tmp_path / "runs"
    common = ("--arch", "mlp", "--epochs", "8", "--batch-size", "8", "--patience", "100",
              "--data", str(tiny_data_dir), "--output-dir", str(runs), "--submissions-dir",
              str(tmp_path / "subs"))
    teacher = run_cli("train.py", *common, "--folds", "2", "--parallel", "1", "--run-name", "t")
    assert teacher.returncode == 0, teacher.stderr

    student = run_cli("train.py", *common, "--folds", "2", "--parallel", "1", "--run-name", "s",
                      "--teacher", str(runs / "t"), "--distill-weight", "0.7")
    assert student.returncode == 0, student.stderr
    assert student.stdout.count("distilling from 1 of 2 teacher model(s)") == 2
    run = RunDir(runs / "s")
    config = run.read_config()
    assert config.teacher == [str(runs / "t")] and config.distill_weight == 0.7
    assert run.read_metrics()["val_accuracy"] > 0.3  # It learned (chance: 0.1).
    assert not any(fold.has_array("teacher_targets") for fold in run.folds())  # Tidied.

    leaking = run_cli("train.py", *common, "--run-name", "h", "--teacher", str(runs / "t"))
    assert_one_line_error(leaking, "left out all 80 rows this fit is judged on", "--full")
    assert not (runs / "h").exists()

    full = run_cli("train.py", *common, "--full", "--lr-schedule", "cosine", "--epochs", "2",
                   "--run-name", "f", "--teacher", str(runs))  # A folder of runs.
    assert full.returncode == 0, full.stderr
    assert "distilling from 4 of 4 teacher model(s)" in full.stdout  # t's and s's folds.

    nothing = run_cli("train.py", *common, "--full", "--teacher", str(tmp_path / "subs"))
    assert_one_line_error(nothing, "not a finished run directory, nor a folder of them")
