"""The training loop: data in, a fitted model and a run directory out.

``train(config)`` returns ``(metrics, run_dir)`` so scripts, tests and benchmarks all call the same
function. The run directory is the contract with later steps (reports, ensembles): ``config.json``,
``history.csv``, ``model.keras``, ``metrics.json``, ``val_probs.npy``, ``val_labels.npy``,
``val_indices.npy``, ``test_probs.npy``, ``submission.csv`` and the report files
(``classification_report.txt``/``.json``, ``confusion_matrix.png``, ``errors.png``,
``learning_curves.png``).
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kaggle_digits.batches import DigitBatches
from kaggle_digits.config import TrainConfig
from kaggle_digits.data import (
    data_report,
    format_data_report,
    load_competition_data,
    resolve_data_dir,
    stratified_split,
)
from kaggle_digits.evaluation import classification_scores
from kaggle_digits.io_utils import (
    atomic_path,
    save_npy_atomic,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from kaggle_digits.models import build_model
from kaggle_digits.reports import write_run_report
from kaggle_digits.submission import write_submission

SAMPLE_NOTICE = (
    "NOTICE: no competition data found (data/digit-recognizer/ or /kaggle/input/digit-recognizer/);"
    " training on the small bundled sample in {path}. Its submission is NOT a valid Kaggle "
    "submission. Get the real data with `python scripts/fetch.py`."
)
PREDICT_BATCH_SIZE = 1024


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, for metrics.json and the benchmark tables."""

    def __init__(self):
        super().__init__()
        self.durations: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.durations.append(time.perf_counter() - self._start)


class LearningRateLogger(keras.callbacks.Callback):
    """Put the optimizer's current learning rate into the epoch logs (and so history.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


def package_versions() -> dict[str, str]:
    import albumentations
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "albumentations": albumentations.__version__,
    }


def make_run_dir(config: TrainConfig) -> Path:
    """``runs/<timestamp>-<arch>`` (or the configured name), never reusing an existing directory."""
    base = config.run_name or f"{dt.datetime.now():%Y%m%d-%H%M%S}-{config.arch}"
    root = Path(config.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        candidate = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a new run directory under {root}")


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer and schedule; warm-up + cosine converged in the fewest epochs."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.lr_schedule == "cosine":
        total_steps = config.epochs * steps_per_epoch
        warmup_steps = min(int(config.warmup_epochs * steps_per_epoch), total_steps // 2)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 10,
            decay_steps=max(total_steps - warmup_steps, 1),
            alpha=0.01,
            warmup_target=config.learning_rate,
            warmup_steps=warmup_steps,
        )
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def build_callbacks(config: TrainConfig, run_dir: Path, timer: EpochTimer
                    ) -> list[keras.callbacks.Callback]:
    callbacks = [
        LearningRateLogger(),
        timer,
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=True),
        # The best model so far survives a crash; the finished run keeps it as model.keras.
        keras.callbacks.ModelCheckpoint(str(run_dir / "checkpoint.keras"), monitor="val_loss",
                                        save_best_only=True),
    ]
    if config.tensorboard:
        # Opt-in: even with epoch-level scalars only, the callback's batch hooks made the default
        # improved_cnn run ~25% slower on two cores (481 s against 378-400 s, BENCHMARKS.md).
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"),
                                                     histogram_freq=0, write_graph=False,
                                                     update_freq="epoch"))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=2, min_lr=1e-5))
    return callbacks


def predict_probs(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return model.predict(np.asarray(images, dtype=np.float32), batch_size=PREDICT_BATCH_SIZE,
                         verbose=0)


def train(config: TrainConfig, log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Train one model as ``config`` says and write its run directory.

    Returns:
        ``(metrics, run_dir)``; metrics is what ``metrics.json`` holds.

    Raises:
        DataError: bad input data (before anything is written).
        ValueError: an invalid configuration or model options, or unavailable pretrained
            weights (before anything is written).
    """
    config = config.resolved()
    data_dir, is_sample = resolve_data_dir(config.data_dir)
    config.data_dir = str(data_dir)
    if is_sample:
        log(SAMPLE_NOTICE.format(path=data_dir))
    started = time.perf_counter()
    data = load_competition_data(data_dir)
    report = data_report(data)
    log(format_data_report(report))
    train_idx, val_idx = stratified_split(data.train_labels, config.val_split, config.split_seed)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config.arch, **config.model_options)

    run_dir = make_run_dir(config)
    config.run_name = run_dir.name
    write_json_atomic(run_dir / "config.json", config.to_dict())
    try:
        metrics = _fit_and_write(config, model, data, report, is_sample, train_idx, val_idx,
                                 run_dir, started, log)
    except BaseException as exc:
        write_text_atomic(run_dir / "FAILED", f"{type(exc).__name__}: {exc}\n")
        raise
    return metrics, run_dir


def _fit_and_write(config, model, data, report, is_sample, train_idx, val_idx, run_dir, started,
                   log):
    train_batches = DigitBatches(
        data.train_images[train_idx], data.train_labels[train_idx], config.batch_size,
        seed=config.seed, augment=config.augment, epochs=config.epochs,
    )
    optimizer = build_optimizer(config, steps_per_epoch=len(train_batches))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    val_images = data.train_images[val_idx].astype(np.float32)
    val_labels = data.train_labels[val_idx]
    log(f"training {config.arch} ({model.count_params():,} parameters) on {len(train_idx)} rows, "
        f"validating on {len(val_idx)}; {config.epochs} epochs, batch {config.batch_size}, "
        f"{config.optimizer} lr {config.learning_rate} ({config.lr_schedule}), "
        f"augment {config.augment}"
        + (f", options {config.model_options}" if config.model_options else ""))
    timer = EpochTimer()
    fit_started = time.perf_counter()
    try:
        model.fit(
            train_batches,
            validation_data=(val_images, val_labels),
            validation_batch_size=PREDICT_BATCH_SIZE,
            epochs=config.epochs,
            callbacks=build_callbacks(config, run_dir, timer),
            verbose=1 if sys.stdout.isatty() else 2,
        )
    finally:
        train_batches.close()
    train_time = time.perf_counter() - fit_started

    with atomic_path(run_dir / "model.keras") as tmp:
        model.save(tmp)
    (run_dir / "checkpoint.keras").unlink(missing_ok=True)
    val_probs = predict_probs(model, val_images)
    predict_started = time.perf_counter()
    test_probs = predict_probs(model, data.test_images)
    predict_time = time.perf_counter() - predict_started
    save_npy_atomic(run_dir / "val_probs.npy", val_probs.astype(np.float32))
    save_npy_atomic(run_dir / "val_labels.npy", val_labels)
    save_npy_atomic(run_dir / "val_indices.npy", val_idx)
    save_npy_atomic(run_dir / "test_probs.npy", test_probs.astype(np.float32))

    submission = write_submission(test_probs.argmax(axis=1), run_dir / "submission.csv",
                                  expected_rows=len(data.test_images))
    copy = Path(config.submissions_dir) / f"{run_dir.name}.csv"
    with atomic_path(copy) as tmp:
        shutil.copyfile(submission, tmp)

    scores = classification_scores(val_labels, val_probs)
    durations = timer.durations
    metrics = {
        "arch": config.arch,
        "run_name": run_dir.name,
        "val_accuracy": scores["accuracy"],
        "val_loss": scores["log_loss"],
        "epochs_run": len(durations),
        "train_time_s": round(train_time, 2),
        "time_per_epoch_s": round(float(np.median(durations)), 2) if durations else None,
        "predict_test_time_s": round(predict_time, 2),
        "total_time_s": round(time.perf_counter() - started, 2),
        "parameters": int(model.count_params()),
        "train_rows": int(len(train_idx)),
        "val_rows": int(len(val_idx)),
        "test_rows": int(len(data.test_images)),
        "data_dir": config.data_dir,
        "is_sample": is_sample,
        "data_fingerprint": data.fingerprint,
        "split": {
            "seed": config.split_seed,
            "val_split": config.val_split,
            "val_indices_sha256": sha256_file(run_dir / "val_indices.npy"),
        },
        "data_checks": report,
        "versions": package_versions(),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "submission": str(copy),
    }
    write_json_atomic(run_dir / "metrics.json", metrics)
    write_run_report(run_dir, data.train_images[val_idx], val_labels, val_probs)
    log(f"validation accuracy {metrics['val_accuracy']:.4%} (loss {metrics['val_loss']:.4f}) "
        f"after {metrics['epochs_run']} epochs, {train_time:.0f}s of training")
    return metrics

