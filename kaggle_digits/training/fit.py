"""The fit of one member (a whole run, one fold, or the full-data fit): optimizer and schedule,
device placement, and the Keras ``fit`` that leaves a checkpoint after every epoch."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np

from kaggle_digits.data.batches import DigitBatches
from kaggle_digits.data.load import NUM_CLASSES, DigitData
from kaggle_digits.evaluation.predict import PREDICT_BATCH_SIZE, load_keras_model, predict_probs
from kaggle_digits.models.losses import training_accuracy, training_loss
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.callbacks import EpochTimer, InterruptAtBatchEnd, build_callbacks
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.runtime import cpu_has_native_bfloat16


@dataclass
class MemberResult:
    """One fitted model of a run: the whole run, one fold, or the full-data fit."""

    model: keras.Model | None
    val_probs: np.ndarray | None
    test_probs: np.ndarray
    durations: list[float]
    train_time: float
    predict_time: float


def build_learning_rate(config: TrainConfig, steps_per_epoch: int
                        ) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The configured learning rate: warm-up + cosine converged in the fewest epochs."""
    if config.lr_schedule != "cosine":
        return config.learning_rate
    total_steps = config.epochs * steps_per_epoch
    warmup_steps = min(int(config.warmup_epochs * steps_per_epoch), total_steps // 2)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=0.01,
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
    )


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer with the schedule of ``build_learning_rate``."""
    learning_rate = build_learning_rate(config, steps_per_epoch)
    ema = ({"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum > 0
           else {})
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True,
                                    **ema)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate, **ema)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=config.adam_beta_1,
                                 beta_2=config.adam_beta_2, **ema)


def distribution_scope(config: TrainConfig, log: Callable[[str], None]):
    """The tf.distribute scope models are built, compiled and fitted in.

    ``mirrored`` replicates the model on every local GPU (on a machine without GPUs, on every
    logical CPU device, which is how the tests exercise it) and splits each batch between them;
    ``default`` is TensorFlow's single-device placement, which already uses one GPU if present.
    """
    if config.strategy != "mirrored":
        return contextlib.nullcontext()
    import tensorflow as tf

    devices = ([d.name for d in tf.config.list_logical_devices("GPU")]
               or [d.name for d in tf.config.list_logical_devices("CPU")])
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    log(f"MirroredStrategy over {strategy.num_replicas_in_sync} device(s): {', '.join(devices)}; "
        f"each batch of {config.batch_size} is split between them")
    return strategy.scope()


def precision_note(config: TrainConfig) -> str | None:
    """A warning for bfloat16 compute on a CPU that only emulates it (and no GPU to run on)."""
    if config.precision != "mixed_bfloat16" or cpu_has_native_bfloat16() is not False:
        return None
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return None
    return ("note: this CPU has no bfloat16 instructions (avx512_bf16 or amx_bf16 in "
            "/proc/cpuinfo), so TensorFlow emulates them and mixed_bfloat16 trains several times "
            "slower than float32 (docs/results.md); --precision float32 is faster")


def apply_determinism(config: TrainConfig) -> None:
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def build_training_state(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> None:
    """Create the optimizer's, loss's and metrics' variables before ``fit`` traces its step.

    Without a distribution strategy Keras leaves them to the first trace of the training step,
    and TensorFlow, seeing variables created there, traces the step a second time: a large share
    of a small run's fit. Public API only: the optimizer builds its slots
    for the trainable weights (in the model's strategy scope, so that a mirrored run's are
    mirrored), and one inference-mode evaluation of a row builds the loss's and metrics'
    variables and the test step that validation reuses; it changes no weight, and ``fit``
    resets the metrics before its first epoch.
    """
    with model.distribute_strategy.scope():
        model.optimizer.build(model.trainable_variables)
    model.test_on_batch(images.astype(np.float32), labels)


def member_targets(config: TrainConfig, data: DigitData, train_idx: np.ndarray,
                   val_idx: np.ndarray | None, member: RunDir, log: Callable[[str], None]
                   ) -> np.ndarray:
    """A distilled member's soft training targets, made once and kept until it finishes, so a
    resumed member trains on the targets it started with."""
    if member.has_array("teacher_targets"):
        targets = member.load_array("teacher_targets")
        if targets.shape == (len(train_idx), NUM_CLASSES):
            return targets
    from kaggle_digits.training.distill import distillation_targets

    targets = distillation_targets(config, data.train_images, data.train_labels,
                                   data.fingerprint, train_idx, val_idx, log)
    member.save_array("teacher_targets", targets)
    return targets


def fit_member(config: TrainConfig, data: DigitData, train_idx: np.ndarray,
               val_idx: np.ndarray | None, member: RunDir, seed: int,
               log: Callable[[str], None], model: keras.Model | None = None,
               extra_callbacks: tuple = ()) -> MemberResult:
    """Fit (or resume fitting) one model and predict its validation and test rows.

    ``extra_callbacks`` run after the epoch's checkpoint is on disk (a search's pruning, a
    cluster job's snapshot).

    A member whose state record says every epoch is done (an interruption after the last epoch)
    is not trained again: its checkpoint is loaded and only the predictions are made.
    """
    state = member.read_state() or {}
    epochs_done = state.get("epochs_done", 0)
    resumed = epochs_done > 0
    left_to_train = epochs_done < config.epochs and not state.get("stopped_early")
    targets = (member_targets(config, data, train_idx, val_idx, member, log) if config.teacher
               else data.train_labels[train_idx])
    train_batches = DigitBatches(
        data.train_images[train_idx], targets, config.batch_size,
        seed=seed, augment=config.augment, epochs=config.epochs, start_epoch=epochs_done,
        augment_ranges=config.augment_ranges,
    )
    if resumed:
        model = load_keras_model(member.checkpoint(state, "checkpoint"), config.input_width)
        member.truncate_history(epochs_done)
        if left_to_train:
            log(f"{member.name}: continuing from epoch {epochs_done + 1} of {config.epochs}")
        else:
            log(f"{member.name}: training had finished ({epochs_done} epochs); writing the "
                f"outputs that the interruption left unwritten")
    else:
        if model is None:  # A model handed in was built right after this same seeding.
            keras.utils.set_random_seed(seed)
            model = config.build_model()
        distilled = bool(config.teacher)
        model.compile(optimizer=build_optimizer(config, steps_per_epoch=len(train_batches)),
                      loss=training_loss(config.label_smoothing, soft_targets=distilled),
                      metrics=[training_accuracy(soft_targets=distilled)])
    validated = val_idx is not None
    validation = ((data.train_images[val_idx].astype(np.float32), data.train_labels[val_idx])
                  if validated else None)
    log(f"training {config.arch} ({model.count_params():,} parameters) on {len(train_idx)} rows, "
        + (f"validating on {len(val_idx)}" if validated else "no validation (full data)")
        + f"; {config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr "
          f"{config.learning_rate} ({config.lr_schedule}), augment {config.augment}"
        + (f" (rotate {config.rotate_deg:g} deg, shift {config.shift_fraction:g}, zoom "
           f"{config.zoom_fraction:g}, shear {config.shear_deg:g} deg"
           + (f", crop {config.crop_size}" if config.crop_size else "")
           + (f", grid {config.grid_distort:g} x {config.grid_steps}" if config.grid_distort
              else "")
           + (f", elastic {config.elastic_alpha:g} sigma {config.elastic_sigma:g}"
              if config.elastic_alpha else "") + ")" if config.augment else "")
        + (f", digits rescaled to {config.input_width} pixels wide inside the model"
           if config.input_width else "")
        + (f", options {config.model_options}" if config.model_options else ""))
    if left_to_train:
        build_training_state(model, data.train_images[:1], targets[:1])
    timer = EpochTimer(state.get("durations"))
    earlier_train_time = sum(timer.durations)  # A resumed run's epochs before the interruption.
    fit_started = time.perf_counter()
    try:
        if left_to_train:
            with InterruptAtBatchEnd() as interrupt:
                model.fit(
                    train_batches,
                    validation_data=validation,
                    validation_batch_size=PREDICT_BATCH_SIZE,
                    epochs=config.epochs,
                    initial_epoch=epochs_done,
                    callbacks=[interrupt,
                               *build_callbacks(config, member, timer, state, validated,
                                                resumed),
                               *extra_callbacks],
                    verbose=1 if sys.stdout.isatty() else 2,
                )
    finally:
        train_batches.close()
    train_time = time.perf_counter() - fit_started + earlier_train_time
    best = member.checkpoint(state, "best_checkpoint")
    if resumed and validated and best is not None and not left_to_train:
        # Nothing was left to train: the best epoch's weights are the run's model.
        model = load_keras_model(best, config.input_width)
    member.save_model(model)
    val_probs = predict_probs(model, data.train_images[val_idx], config.tta) if validated else None
    predict_started = time.perf_counter()
    test_probs = predict_probs(model, data.test_images, config.tta)
    predict_time = time.perf_counter() - predict_started
    return MemberResult(model, val_probs, test_probs, timer.durations, train_time, predict_time)
