"""Keras callbacks of a training run: timing, the learning rate in the logs, resumable early
stopping and the per-epoch checkpoint that makes a run resumable."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import keras
import numpy as np

from kaggle_digits import UserError
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, for metrics.json and the benchmark tables."""

    def __init__(self, durations: list[float] | None = None):
        super().__init__()
        self.durations: list[float] = list(durations or [])

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.durations.append(time.perf_counter() - self._start)


class InterruptAtBatchEnd(keras.callbacks.Callback):
    """Ctrl-C during ``fit`` becomes a KeyboardInterrupt raised here, at the next batch's end,
    instead of wherever the main thread happened to be.

    Raised at an arbitrary point, it could land inside TensorFlow's own bookkeeping while its
    data thread was still running our batches: now and then (once in CI, once in 54 tries here)
    the process then died of a segmentation fault or a TensorFlow error instead of leaving a
    FAILED, resumable run. A second Ctrl-C interrupts at once. Used as a context manager around
    ``fit``; it changes nothing where SIGINT is not Python's default (ignored, or handled by a
    host such as Ray) or off the main thread.
    """

    def __init__(self):
        super().__init__()
        self.requested = False
        self._previous = None

    def __enter__(self) -> "InterruptAtBatchEnd":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.requested and exc_type is None:  # Asked for after the last batch's check.
            self.requested = False
            raise KeyboardInterrupt
        return False

    def _request(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _raise_if_requested(self, *args, **kwargs) -> None:
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_begin = _raise_if_requested


class LearningRateLogger(keras.callbacks.Callback):
    """Put the optimizer's current learning rate into the epoch logs (and so history.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                self.model.optimizer.learning_rate))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that can pick up the best score, wait count and best weights of a resumed
    run."""

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

    def __init__(self, member: RunDir, state: dict, timer: EpochTimer,
                 early_stopping: keras.callbacks.EarlyStopping | None):
        super().__init__()
        self.member, self.state = member, state
        self.timer, self.early_stopping = timer, early_stopping

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val_loss = logs.get("val_loss")
        last = self.member.save_checkpoint(self.model, epoch + 1)
        if val_loss is not None and (self.state.get("best_val_loss") is None
                                     or val_loss < self.state["best_val_loss"]):
            best = self.member.save_checkpoint(self.model, epoch + 1, best=True, copy_of=last)
            self.state.update(best_val_loss=float(val_loss), best_epoch=epoch,
                              best_checkpoint=best)
        self.state.update(epochs_done=epoch + 1, durations=self.timer.durations, checkpoint=last,
                          wait=self.early_stopping.wait if self.early_stopping else 0,
                          stopped_early=bool(self.model.stop_training))
        self.member.write_state(self.state)
        self.member.remove_checkpoints(keep=(last, self.state.get("best_checkpoint")))


class EMAWeightsBetweenEpochs(keras.callbacks.SwapEMAWeights):
    """The optimizer's moving average of the weights is the model from each epoch's end to the
    next epoch's start (Keras' ``SwapEMAWeights(swap_on_epoch=True)``), so validation, early
    stopping, the checkpoints and the saved model all see it. Keras' callback forgets, on a
    resume, that the checkpoint was written in that state: it then trained on from the average
    with the raw weights as the average. Told ``resumed``, it swaps them back first.
    Listed before every callback that reads the weights at an epoch's end.
    """

    def __init__(self, resumed: bool):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite: the run cannot learn from here."""


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' NaN check, raising an error that says where and what to change, instead of
    letting epochs of NaN loss end in a scikit-learn traceback."""

    def __init__(self, learning_rate: float):
        super().__init__(raise_error=True)
        self.learning_rate, self.epoch = learning_rate, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise TrainingDiverged(
                f"the training loss became {float(loss)} in epoch {self.epoch + 1}, batch "
                f"{batch + 1}: training diverged; lower the learning rate (it was "
                f"{self.learning_rate:g}) or check the data")


def build_callbacks(config: TrainConfig, member: RunDir, timer: EpochTimer, state: dict,
                    validated: bool, resumed: bool) -> list[keras.callbacks.Callback]:
    early_stopping = (ResumableEarlyStopping(
        resumed=state if resumed else None,
        best_weights_path=member.checkpoint(state, "best_checkpoint"),
        monitor="val_loss", patience=config.patience, restore_best_weights=True)
        if validated else None)
    callbacks = [EMAWeightsBetweenEpochs(resumed)] if config.ema_momentum > 0 else []
    callbacks += [
        StopOnNaN(config.learning_rate),
        LearningRateLogger(),
        timer,
        keras.callbacks.CSVLogger(str(member.history_path), append=resumed),
    ]
    if early_stopping is not None:
        callbacks.append(early_stopping)
    callbacks.append(RunCheckpoint(member, state, timer, early_stopping))
    if config.tensorboard:
        # Opt-in: even with epoch-level scalars only, the callback's batch hooks slow a run on
        # two cores measurably (BENCHMARKS.md).
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(member.tensorboard_dir),
                                                     histogram_freq=0, write_graph=False,
                                                     update_freq="epoch"))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=2, min_lr=1e-5))
    return callbacks
