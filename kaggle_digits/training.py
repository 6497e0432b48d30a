"""The training loop: data in, fitted models and a run directory out.

``train(config)`` returns ``(metrics, run_dir)`` so scripts, tests and benchmarks all call the same
function. The run directory is the contract with later steps (reports, ensembles, predict):
``config.json``, ``history.csv``, ``model.keras``, ``metrics.json``, ``val_probs.npy``,
``val_labels.npy``, ``val_indices.npy``, ``test_probs.npy``, ``submission.csv`` and the report
files. A k-fold run keeps one model per fold under ``folds/foldN/`` and its ``val_probs.npy`` holds
out-of-fold probabilities for every labelled row; a full-data run has no validation files.

Every epoch leaves a checkpoint (``checkpoint-epochNNN.keras`` with the optimizer state) and then
``state.json``, the one record that names it: a kill between the two writes leaves the previous,
consistent pair. Checkpoints and state stay until ``metrics.json``, the run's last file, is
written, so an interruption at any point, even while predicting or writing the submission,
continues with ``resume(run_dir)``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from kaggle_digits.batches import DigitBatches
from kaggle_digits.config import TrainConfig
from kaggle_digits.data import (
    DigitData,
    data_report,
    format_data_report,
    load_competition_data,
    resolve_data_dir,
    stratified_folds,
    stratified_split,
)
from kaggle_digits.evaluation import classification_scores
from kaggle_digits.io_utils import (
    atomic_path,
    load_npy,
    save_npy_atomic,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from kaggle_digits.losses import training_loss
from kaggle_digits.models import build_model
from kaggle_digits.plots import plot_learning_curves
from kaggle_digits.reports import write_html_report, write_run_report
from kaggle_digits.submission import write_submission
from kaggle_digits.tta import predict_with_tta

SAMPLE_NOTICE = (
    "NOTICE: no competition data found (data/digit-recognizer/ or /kaggle/input/digit-recognizer/);"
    " training on the small bundled sample in {path}. Its submission is NOT a valid Kaggle "
    "submission. Get the real data with `python scripts/fetch.py`."
)
PREDICT_BATCH_SIZE = 1024
STATE_FILE = "state.json"
LAST_CHECKPOINT_PATTERN = "checkpoint-epoch{:03d}.keras"
BEST_CHECKPOINT_PATTERN = "best-epoch{:03d}.keras"
CHECKPOINT_GLOBS = ("checkpoint-epoch*.keras", "best-epoch*.keras")


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, for metrics.json and the benchmark tables."""

    def __init__(self, durations: list[float] | None = None):
        super().__init__()
        self.durations: list[float] = list(durations or [])

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


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that can pick up the best score, wait count and best weights of a resumed run."""

    def __init__(self, resumed: dict | None = None, best_weights_path: Path | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.resumed, self.best_weights_path = resumed, best_weights_path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed and self.resumed.get("best_val_loss") is not None:
            self.best = self.resumed["best_val_loss"]
            self.best_epoch = self.resumed["best_epoch"]
            self.wait = self.resumed["wait"]
            if self.best_weights_path is not None and self.best_weights_path.exists():
                self.best_weights = keras.models.load_model(
                    self.best_weights_path, safe_mode=True).get_weights()


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: the model with its optimizer state, the best model so far, then the
    state record that names both, each written atomically and synced to disk.

    Checkpoint files carry their epoch in their name, and the ones the record no longer names are
    deleted only after the record is on disk, so the record always names files that exist.
    """

    def __init__(self, member_dir: Path, state: dict, timer: EpochTimer,
                 early_stopping: keras.callbacks.EarlyStopping | None):
        super().__init__()
        self.member_dir, self.state = member_dir, state
        self.timer, self.early_stopping = timer, early_stopping

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val_loss = logs.get("val_loss")
        if val_loss is not None and (self.state.get("best_val_loss") is None
                                     or val_loss < self.state["best_val_loss"]):
            best = BEST_CHECKPOINT_PATTERN.format(epoch + 1)
            with atomic_path(self.member_dir / best) as tmp:
                self.model.save(tmp)
            self.state.update(best_val_loss=float(val_loss), best_epoch=epoch,
                              best_checkpoint=best)
        last = LAST_CHECKPOINT_PATTERN.format(epoch + 1)
        with atomic_path(self.member_dir / last) as tmp:
            self.model.save(tmp)
        self.state.update(epochs_done=epoch + 1, durations=self.timer.durations, checkpoint=last,
                          wait=self.early_stopping.wait if self.early_stopping else 0,
                          stopped_early=bool(self.model.stop_training))
        write_json_atomic(self.member_dir / STATE_FILE, self.state)
        remove_checkpoints(self.member_dir, keep=(last, self.state.get("best_checkpoint")))


def remove_checkpoints(member_dir: Path, keep: tuple = ()) -> None:
    for pattern in CHECKPOINT_GLOBS:
        for path in member_dir.glob(pattern):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def _checkpoint_path(member_dir: Path, state: dict, key: str) -> Path | None:
    """The checkpoint a state record names; a record that names a missing file is an error."""
    name = state.get(key)
    if name is None:
        return None
    path = member_dir / name
    if not path.is_file():
        raise ValueError(f"{member_dir}: {STATE_FILE} names {name}, which is missing; the run "
                         f"directory was changed by hand, start the run again")
    return path


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its directory is marked FAILED and the message says how to resume."""

    def __init__(self, run_dir: Path, epochs_done: int):
        self.run_dir = run_dir
        super().__init__(f"interrupted after {epochs_done} completed epoch(s); the run is saved "
                         f"and marked FAILED until resumed with:\n  python scripts/train.py "
                         f"--resume {run_dir}")


@dataclass
class MemberResult:
    """One fitted model of a run: the whole run, one fold, or the full-data fit."""

    model: keras.Model
    val_probs: np.ndarray | None
    test_probs: np.ndarray
    durations: list[float]
    train_time: float
    predict_time: float


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
    suffix = f"-kfold{config.folds}" if config.folds > 1 else "-full" if config.full else ""
    base = config.run_name or f"{dt.datetime.now():%Y%m%d-%H%M%S}-{config.arch}{suffix}"
    root = Path(config.output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create the output directory ({exc.strerror})",
                      str(root)) from None
    for attempt in range(1000):
        candidate = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a new run directory under {root}")


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
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def build_callbacks(config: TrainConfig, member_dir: Path, timer: EpochTimer, state: dict,
                    validated: bool, resumed: bool) -> list[keras.callbacks.Callback]:
    early_stopping = (ResumableEarlyStopping(
        resumed=state if resumed else None,
        best_weights_path=_checkpoint_path(member_dir, state, "best_checkpoint"),
        monitor="val_loss", patience=config.patience, restore_best_weights=True)
        if validated else None)
    callbacks = [
        LearningRateLogger(),
        timer,
        keras.callbacks.CSVLogger(str(member_dir / "history.csv"), append=resumed),
    ]
    if early_stopping is not None:
        callbacks.append(early_stopping)
    callbacks.append(RunCheckpoint(member_dir, state, timer, early_stopping))
    if config.tensorboard:
        # Opt-in: even with epoch-level scalars only, the callback's batch hooks made the default
        # improved_cnn run ~25% slower on two cores (481 s against 378-400 s, BENCHMARKS.md).
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(member_dir / "tensorboard"),
                                                     histogram_freq=0, write_graph=False,
                                                     update_freq="epoch"))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=2, min_lr=1e-5))
    return callbacks


def predict_probs(model: keras.Model, images: np.ndarray, tta: int = 1) -> np.ndarray:
    """Class probabilities of uint8 images, averaged over ``tta`` fixed views when > 1."""
    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict(np.asarray(batch, dtype=np.float32), batch_size=PREDICT_BATCH_SIZE,
                             verbose=0)

    return predict_with_tta(predict, images, tta)


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


def _apply_determinism(config: TrainConfig) -> None:
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def train(config: TrainConfig, log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Train as ``config`` says (one split, k folds, or all rows) and write its run directory.

    Returns:
        ``(metrics, run_dir)``; metrics is what ``metrics.json`` holds.

    Raises:
        DataError: bad input data (before anything is written).
        ValueError: an invalid configuration or model options, or unavailable pretrained
            weights (before anything is written).
        KeyboardInterrupt: after marking the run FAILED with the command that resumes it.
    """
    config = config.resolved()
    data_dir, is_sample = resolve_data_dir(config.data_dir)
    config.data_dir = str(data_dir)
    if is_sample:
        log(SAMPLE_NOTICE.format(path=data_dir))
    started = time.perf_counter()
    data = load_competition_data(data_dir)
    _check_split(config, data)
    _apply_determinism(config)
    keras.utils.set_random_seed(config.seed)
    with distribution_scope(config, log):
        first_model = build_model(config.arch, **config.model_options)  # Bad options fail here.

        run_dir = make_run_dir(config)
        config.run_name = run_dir.name
        config.versions = package_versions()
        write_json_atomic(run_dir / "config.json", config.to_dict())
        write_json_atomic(run_dir / STATE_FILE, {"data_fingerprint": data.fingerprint,
                                                "is_sample": is_sample})
        return _run_guarded(config, data, is_sample, run_dir, started, log, first_model)


def _check_split(config: TrainConfig, data: DigitData) -> None:
    """Fail on labels that cannot be split as configured, before a run directory exists."""
    try:
        if config.folds > 1:
            stratified_folds(data.train_labels, config.folds, config.split_seed)
        elif not config.full:
            stratified_split(data.train_labels, config.val_split, config.split_seed)
    except ValueError as exc:
        raise ValueError(f"{config.data_dir}: train.csv: {exc}") from None


def resume(run_dir: str | Path, log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Continue an interrupted run from its last completed epoch to its planned end.

    Raises:
        ValueError: not a run directory, already finished, or its data files changed.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ValueError(f"{run_dir}: not a run directory (no config.json)")
    if (run_dir / "metrics.json").exists():
        raise ValueError(f"{run_dir}: this run already finished; nothing to resume")
    config = TrainConfig.load(run_dir)
    try:
        recorded = json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise ValueError(f"{run_dir}: no readable {STATE_FILE}; the run stopped before it "
                         f"started training, start it again instead") from None
    started = time.perf_counter()
    data = load_competition_data(config.data_dir)
    if data.fingerprint != recorded["data_fingerprint"]:
        raise ValueError(f"{run_dir}: the data in {config.data_dir} is not what this run was "
                         f"started on (SHA-256 mismatch); refusing to resume")
    _apply_determinism(config)
    if config.versions and config.versions != package_versions():
        log(f"note: package versions differ from the run's start ({config.versions}); the "
            f"resumed epochs may not match an uninterrupted run exactly")
    (run_dir / "FAILED").unlink(missing_ok=True)
    log(f"resuming {run_dir}")
    with distribution_scope(config, log):
        return _run_guarded(config, data, recorded["is_sample"], run_dir, started, log, None)


def _run_guarded(config, data, is_sample, run_dir, started, log, first_model):
    report = data_report(data)
    log(format_data_report(report))
    try:
        if config.folds > 1:
            metrics = _run_kfold(config, data, report, is_sample, run_dir, started, log,
                                 first_model)
        else:
            metrics = _run_single(config, data, report, is_sample, run_dir, started, log,
                                  first_model)
    except KeyboardInterrupt:
        write_text_atomic(run_dir / "FAILED", f"KeyboardInterrupt: interrupted; resume with "
                                              f"python scripts/train.py --resume {run_dir}\n")
        raise TrainingInterrupted(run_dir, _epochs_done(run_dir)) from None
    except BaseException as exc:
        write_text_atomic(run_dir / "FAILED", f"{type(exc).__name__}: {exc}\n")
        raise
    for member_dir in [run_dir, *run_dir.glob("folds/fold*")]:
        _remove_resume_files(member_dir)
    return metrics, run_dir


def _remove_resume_files(member_dir: Path) -> None:
    """Checkpoints and state of a member whose outputs are all written: nothing left to resume."""
    remove_checkpoints(member_dir)
    (member_dir / STATE_FILE).unlink(missing_ok=True)


def _epochs_done(run_dir: Path) -> int:
    """Completed epochs over the run's members (a k-fold run counts every fold's)."""
    total = 0
    for state_path in [run_dir / STATE_FILE, *run_dir.glob(f"folds/*/{STATE_FILE}")]:
        try:
            total += json.loads(state_path.read_text()).get("epochs_done", 0)
        except (OSError, json.JSONDecodeError):
            pass
    return total


def _fit_member(config: TrainConfig, data: DigitData, train_idx: np.ndarray,
                val_idx: np.ndarray | None, member_dir: Path, seed: int, log,
                model: keras.Model | None) -> MemberResult:
    """Fit (or resume fitting) one model and predict its validation and test rows."""
    state_path = member_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    epochs_done = state.get("epochs_done", 0)
    resumed = epochs_done > 0
    train_batches = DigitBatches(
        data.train_images[train_idx], data.train_labels[train_idx], config.batch_size,
        seed=seed, augment=config.augment, epochs=config.epochs, start_epoch=epochs_done,
    )
    if resumed:
        model = keras.models.load_model(_checkpoint_path(member_dir, state, "checkpoint"),
                                        safe_mode=True)
        _truncate_history(member_dir / "history.csv", epochs_done)
        if epochs_done < config.epochs and not state.get("stopped_early"):
            log(f"{member_dir.name}: continuing from epoch {epochs_done + 1} of {config.epochs}")
        else:
            log(f"{member_dir.name}: training had finished ({epochs_done} epochs); writing the "
                f"outputs that the interruption left unwritten")
    else:
        keras.utils.set_random_seed(seed)
        model = model or build_model(config.arch, **config.model_options)
        model.compile(optimizer=build_optimizer(config, steps_per_epoch=len(train_batches)),
                      loss=training_loss(config.label_smoothing),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    validated = val_idx is not None
    validation = ((data.train_images[val_idx].astype(np.float32), data.train_labels[val_idx])
                  if validated else None)
    log(f"training {config.arch} ({model.count_params():,} parameters) on {len(train_idx)} rows, "
        + (f"validating on {len(val_idx)}" if validated else "no validation (full data)")
        + f"; {config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr "
          f"{config.learning_rate} ({config.lr_schedule}), augment {config.augment}"
        + (f", options {config.model_options}" if config.model_options else ""))
    timer = EpochTimer(state.get("durations"))
    earlier_train_time = sum(timer.durations)  # A resumed run's epochs before the interruption.
    fit_started = time.perf_counter()
    try:
        if epochs_done < config.epochs and not state.get("stopped_early"):
            model.fit(
                train_batches,
                validation_data=validation,
                validation_batch_size=PREDICT_BATCH_SIZE,
                epochs=config.epochs,
                initial_epoch=epochs_done,
                callbacks=build_callbacks(config, member_dir, timer, state, validated, resumed),
                verbose=1 if sys.stdout.isatty() else 2,
            )
    finally:
        train_batches.close()
    train_time = time.perf_counter() - fit_started + earlier_train_time
    best = _checkpoint_path(member_dir, state, "best_checkpoint")
    if resumed and validated and best is not None and len(timer.durations) == epochs_done:
        # Nothing was left to train: the best epoch's weights are the run's model.
        model = keras.models.load_model(best, safe_mode=True)
    with atomic_path(member_dir / "model.keras") as tmp:
        model.save(tmp)
    val_probs = predict_probs(model, data.train_images[val_idx], config.tta) if validated else None
    predict_started = time.perf_counter()
    test_probs = predict_probs(model, data.test_images, config.tta)
    predict_time = time.perf_counter() - predict_started
    return MemberResult(model, val_probs, test_probs, timer.durations, train_time, predict_time)


def _truncate_history(history_csv: Path, epochs: int) -> None:
    """Drop rows of epochs after the checkpoint (a kill can land between the two writes)."""
    if history_csv.exists():
        lines = history_csv.read_text().splitlines(keepends=True)
        write_text_atomic(history_csv, "".join(lines[:epochs + 1]))


def _run_single(config, data, report, is_sample, run_dir, started, log, first_model):
    if config.full:
        train_idx, val_idx = np.arange(len(data.train_labels)), None
    else:
        train_idx, val_idx = stratified_split(data.train_labels, config.val_split,
                                              config.split_seed)
    result = _fit_member(config, data, train_idx, val_idx, run_dir, config.seed, log, first_model)
    if val_idx is not None:
        save_npy_atomic(run_dir / "val_probs.npy", result.val_probs.astype(np.float32))
        save_npy_atomic(run_dir / "val_labels.npy", data.train_labels[val_idx])
        save_npy_atomic(run_dir / "val_indices.npy", val_idx)
    save_npy_atomic(run_dir / "test_probs.npy", result.test_probs.astype(np.float32))
    metrics = _common_metrics(config, data, report, is_sample, run_dir, result)
    metrics.update(kind="full" if config.full else "holdout", train_rows=int(len(train_idx)),
                   parameters=int(result.model.count_params()))
    if val_idx is not None:
        scores = classification_scores(data.train_labels[val_idx], result.val_probs)
        metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                       val_rows=int(len(val_idx)), split=_split_record(config, run_dir))
    else:
        metrics.update(val_accuracy=None, val_loss=None, val_rows=0, split=None)
    return _finish(config, data, run_dir, result.test_probs, metrics, log, val_idx,
                   result.val_probs, started)


def _run_kfold(config, data, report, is_sample, run_dir, started, log, first_model):
    folds = stratified_folds(data.train_labels, config.folds, config.split_seed)
    oof = np.zeros((len(data.train_labels), 10), dtype=np.float32)
    test_probs = np.zeros((len(data.test_images), 10), dtype=np.float64)
    fold_of_row = np.zeros(len(data.train_labels), dtype=np.int64)
    fold_scores, durations, train_time, predict_time = [], [], 0.0, 0.0
    for fold, (train_idx, val_idx) in enumerate(folds, start=1):
        fold_dir = run_dir / "folds" / f"fold{fold}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        if (fold_dir / "fold.json").exists():  # Finished before an interruption.
            fold_val = load_npy(fold_dir / "val_probs.npy")
            fold_test = load_npy(fold_dir / "test_probs.npy")
            record = json.loads((fold_dir / "fold.json").read_text())
        else:
            log(f"fold {fold}/{config.folds}")
            result = _fit_member(config, data, train_idx, val_idx, fold_dir, config.seed + fold,
                                 log, first_model if fold == 1 else None)
            fold_val, fold_test = result.val_probs, result.test_probs
            record = {"fold": fold, "val_rows": int(len(val_idx)),
                      "val_accuracy": classification_scores(data.train_labels[val_idx],
                                                            fold_val)["accuracy"],
                      "durations": result.durations, "train_time_s": result.train_time,
                      "predict_test_time_s": result.predict_time,
                      "parameters": int(result.model.count_params())}
            save_npy_atomic(fold_dir / "val_probs.npy", fold_val.astype(np.float32))
            save_npy_atomic(fold_dir / "test_probs.npy", fold_test.astype(np.float32))
            _plot_history(fold_dir, f"{run_dir.name} fold {fold}")
            write_json_atomic(fold_dir / "fold.json", record)
            _remove_resume_files(fold_dir)
            log(f"fold {fold}/{config.folds}: validation accuracy {record['val_accuracy']:.4%}")
        oof[val_idx] = fold_val
        fold_of_row[val_idx] = fold
        test_probs += fold_test / config.folds
        fold_scores.append(record["val_accuracy"])
        durations += record["durations"]
        train_time += record["train_time_s"]
        predict_time += record["predict_test_time_s"]
        parameters = record["parameters"]
    all_rows = np.arange(len(data.train_labels))
    save_npy_atomic(run_dir / "val_probs.npy", oof)
    save_npy_atomic(run_dir / "val_labels.npy", data.train_labels)
    save_npy_atomic(run_dir / "val_indices.npy", all_rows)
    save_npy_atomic(run_dir / "fold_of_row.npy", fold_of_row)
    save_npy_atomic(run_dir / "test_probs.npy", test_probs.astype(np.float32))
    result = MemberResult(None, oof, test_probs, durations, train_time, predict_time)
    metrics = _common_metrics(config, data, report, is_sample, run_dir, result)
    scores = classification_scores(data.train_labels, oof)
    metrics.update(kind="kfold", folds=config.folds, fold_val_accuracy=fold_scores,
                   val_accuracy=scores["accuracy"], val_loss=scores["log_loss"],
                   val_rows=int(len(all_rows)), parameters=parameters,
                   train_rows=int(len(all_rows) - len(all_rows) // config.folds),
                   split=_split_record(config, run_dir))
    return _finish(config, data, run_dir, test_probs, metrics, log, all_rows, oof, started)


def _split_record(config: TrainConfig, run_dir: Path) -> dict:
    return {"seed": config.split_seed, "val_split": None if config.folds > 1 else config.val_split,
            "folds": config.folds, "val_indices_sha256": sha256_file(run_dir / "val_indices.npy")}


def _common_metrics(config, data, report, is_sample, run_dir, result) -> dict:
    durations = result.durations
    return {
        "arch": config.arch,
        "run_name": run_dir.name,
        "epochs_run": len(durations) // max(config.folds, 1),
        "train_time_s": round(result.train_time, 2),
        "time_per_epoch_s": round(float(np.median(durations)), 2) if durations else None,
        "predict_test_time_s": round(result.predict_time, 2),
        "tta": config.tta,
        "test_rows": int(len(data.test_images)),
        "data_dir": config.data_dir,
        "is_sample": is_sample,
        "data_fingerprint": data.fingerprint,
        "data_checks": report,
        "versions": package_versions(),
    }


def _plot_history(member_dir: Path, title: str) -> None:
    if (member_dir / "history.csv").exists():
        plot_learning_curves(member_dir / "history.csv", member_dir / "learning_curves.png",
                             title=title)


def _finish(config, data, run_dir, test_probs, metrics, log, val_idx, val_probs, started
            ) -> dict:
    submission = write_submission(test_probs.argmax(axis=1), run_dir / "submission.csv",
                                  expected_rows=len(data.test_images))
    copy = Path(config.submissions_dir) / f"{run_dir.name}.csv"
    with atomic_path(copy) as tmp:
        shutil.copyfile(submission, tmp)
    metrics.update(total_time_s=round(time.perf_counter() - started, 2),
                   finished=dt.datetime.now().isoformat(timespec="seconds"),
                   submission=str(copy), submission_sha256=sha256_file(copy))
    write_json_atomic(copy.with_suffix(".json"), submission_record(run_dir, metrics))
    if val_idx is not None:
        write_run_report(run_dir, data.train_images[val_idx], data.train_labels[val_idx],
                         val_probs, metrics)
    else:
        _plot_history(run_dir, f"{run_dir.name}: full-data fit (no validation)")
        write_html_report(run_dir, metrics)
    write_json_atomic(run_dir / "metrics.json", metrics)  # Last: the run is finished.
    if val_idx is not None:
        log(f"validation accuracy {metrics['val_accuracy']:.4%} (loss {metrics['val_loss']:.4f}) "
            f"after {metrics['epochs_run']} epochs, {metrics['train_time_s']:.0f}s of training")
    else:
        log(f"trained on all {metrics['train_rows']} labelled rows for {metrics['epochs_run']} "
            f"epochs, {metrics['train_time_s']:.0f}s of training (no validation score)")
    return metrics


def submission_record(run_dir: Path, metrics: dict) -> dict:
    """The sidecar beside a submission copy: which run made it, for which data, and the CSV's
    own SHA-256 so that submit.py can tell an edited file from the one the run wrote."""
    return {"run_dir": str(run_dir.resolve()), "arch": metrics["arch"],
            "val_accuracy": metrics.get("val_accuracy"), "is_sample": metrics["is_sample"],
            "data_fingerprint": metrics["data_fingerprint"],
            "submission_sha256": metrics["submission_sha256"]}
