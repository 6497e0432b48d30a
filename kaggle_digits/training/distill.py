"""Soft-label distillation (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural
Network"): one student trained against its labels mixed with an ensemble's probabilities, so that
``train.py`` users get most of an ensemble in one model.

Only teacher models that never trained on the rows the student is judged on teach it: a student's
validation (or out-of-fold) score must not learn, through its teacher, the labels it is scored
against. A k-fold student on a teacher run's split seed gets, for fold f, that run's fold-f model;
a full-data student gets every teacher model; a holdout student on another split gets none, and
is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.special import softmax

from kaggle_digits import UserError
from kaggle_digits.data.load import NUM_CLASSES
from kaggle_digits.runs.rundir import RunDir


@dataclass(frozen=True)
class TeacherModel:
    """A saved model and the labelled rows it never trained on."""

    path: Path
    held_out: np.ndarray  # bool, one per labelled row
    input_width: int  # The input variant its run recorded (TrainConfig.input_width).


def teacher_models(paths: list[str], fingerprint: dict[str, str], rows: int
                   ) -> list[TeacherModel]:
    """The models of the finished teacher runs ``paths`` (a run directory, or a folder of them
    such as a recipe's), each with the rows it held out.

    Raises:
        ValueError: a path that is no finished run nor holds any, or a run made on other data.
    """
    models = []
    for path in paths:
        for run in _runs_at(Path(path)):
            metrics = run.read_metrics()
            recorded = metrics.get("data_fingerprint") or {}
            differs = sorted(name for name, digest in fingerprint.items()
                             if name in recorded and recorded[name] != digest)
            if differs or not set(fingerprint) & set(recorded):
                raise UserError(f"teacher {run}: trained on other data than this run "
                                 f"({', '.join(differs) or 'no fingerprint recorded'} differ)")
            models += _models_of(run, metrics.get("kind"), rows)
    return models


def _runs_at(path: Path) -> list[RunDir]:
    run = RunDir(path)
    if run.metrics_path.is_file():
        run.require_finished()
        return [run]
    inner = [RunDir(child) for child in sorted(path.iterdir())
             if child.is_dir() and RunDir(child).metrics_path.is_file()] if path.is_dir() else []
    if not inner:
        raise UserError(f"teacher {path}: not a finished run directory, nor a folder of them "
                         f"(no {run.metrics_path.name})")
    for member in inner:
        member.require_finished()
    return inner


def _models_of(run: RunDir, kind: str | None, rows: int) -> list[TeacherModel]:
    input_width = run.read_config().input_width
    if kind == "kfold":
        try:
            folds = run.fold_models()
        except UserError as exc:
            raise UserError(f"teacher {exc}") from None
        recorded = len(run.load_array("fold_of_row"))
        if recorded != rows:
            raise UserError(f"teacher {run}: {recorded} rows in "
                             f"{run.array_path('fold_of_row').name}, the data has {rows}")
        return [TeacherModel(fold.model_path, np.isin(np.arange(rows), fold.rows), input_width)
                for fold in folds]
    held_out = np.zeros(rows, dtype=bool)
    if kind == "holdout":
        indices = run.load_array("val_indices")
        if len(indices) and (indices.min() < 0 or indices.max() >= rows):
            raise UserError(f"teacher {run}: {run.array_path('val_indices').name} names rows "
                             f"outside 0..{rows - 1}")
        held_out[indices] = True
    elif kind != "full":
        raise UserError(f"teacher {run}: a {kind!r} run; teachers are holdout, k-fold or "
                         f"full-data runs")
    return [TeacherModel(run.model_path, held_out, input_width)]


def soft_targets(labels: np.ndarray, teacher_probs: np.ndarray, weight: float,
                 temperature: float) -> np.ndarray:
    """``1 - weight`` of each one-hot label plus ``weight`` of the teacher's probabilities
    raised to ``1 / temperature`` and renormalised (the softmax of its logits / temperature)."""
    softened = softmax(np.log(np.clip(teacher_probs, 1e-12, 1.0)) / temperature, axis=1)
    one_hot = np.eye(NUM_CLASSES, dtype=np.float64)[labels]
    return ((1.0 - weight) * one_hot + weight * softened).astype(np.float32)


def check_teachers(config, labels: np.ndarray, fingerprint: dict[str, str]) -> None:
    """Fail before a run directory exists when a member of the run ``config`` describes (its
    holdout fit, each fold, or the full-data fit) would have no teacher model to learn from."""
    if not config.teacher:
        return
    from kaggle_digits.data.splits import stratified_folds, stratified_split

    models = teacher_models(config.teacher, fingerprint, len(labels))
    if config.folds > 1:
        judged_sets = [val_idx for _, val_idx in
                       stratified_folds(labels, config.folds, config.split_seed)]
    elif config.full:
        judged_sets = [np.empty(0, dtype=np.int64)]
    else:
        judged_sets = [stratified_split(labels, config.val_split, config.split_seed)[1]]
    for judged in judged_sets:
        _usable(config, models, judged)


def _usable(config, models: list[TeacherModel], judged: np.ndarray) -> list[TeacherModel]:
    usable = [model for model in models if model.held_out[judged].all()]
    if not usable:
        raise UserError(
            f"no model of teacher {', '.join(config.teacher)} left out all {len(judged)} rows "
            f"this fit is judged on, so its score would learn their labels through the teacher; "
            f"train the student with --folds K --split-seed S as a k-fold teacher run was, or "
            f"with --full")
    return usable


def distillation_targets(config, images: np.ndarray, labels: np.ndarray,
                         fingerprint: dict[str, str], train_idx: np.ndarray,
                         val_idx: np.ndarray | None, log: Callable[[str], None] = print
                         ) -> np.ndarray:
    """The soft targets of rows ``train_idx`` for a student judged on ``val_idx`` (None: a
    full-data fit), from the teacher models of ``config.teacher`` that never saw ``val_idx``.

    Raises:
        ValueError: no teacher model held out all of ``val_idx``.
    """
    from kaggle_digits.evaluation.predict import load_keras_model, predict_probs

    models = teacher_models(config.teacher, fingerprint, len(labels))
    judged = np.asarray(val_idx if val_idx is not None else [], dtype=np.int64)
    usable = _usable(config, models, judged)
    log(f"distilling from {len(usable)} of {len(models)} teacher model(s) (those that never "
        f"trained on the {len(judged)} rows this fit is judged on); targets: "
        f"{1 - config.distill_weight:g} label + {config.distill_weight:g} teacher at "
        f"temperature {config.distill_temperature:g}")
    probs = np.zeros((len(train_idx), NUM_CLASSES), dtype=np.float64)
    for model in usable:
        probs += predict_probs(load_keras_model(model.path, model.input_width),
                               images[train_idx]) / len(usable)
    return soft_targets(labels[train_idx], probs, config.distill_weight,
                        config.distill_temperature)
