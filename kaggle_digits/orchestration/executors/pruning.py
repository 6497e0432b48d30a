"""Pruning a search trial that trains in this process (the local executor's)."""

from __future__ import annotations

import math

import keras


class LocalPruning(keras.callbacks.Callback):
    """Reports each epoch's validation loss to the trial and stops a trial Optuna prunes."""

    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is None or not math.isfinite(loss):
            return
        self.trial.report(float(loss), epoch)
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_after_epoch", epoch + 1)
            self.model.stop_training = True
