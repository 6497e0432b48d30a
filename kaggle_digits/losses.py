"""Training losses that Keras has only for one-hot targets, made to take integer labels."""

from __future__ import annotations

import keras
from keras import ops

NUM_CLASSES = 10


@keras.saving.register_keras_serializable(package="kaggle_digits")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy against label-smoothed targets (Szegedy et al. 2016, "Rethinking the
    Inception Architecture"), for integer labels.

    Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this one-hot encodes the
    labels and calls ``keras.losses.categorical_crossentropy``, which has.
    """

    def __init__(self, label_smoothing: float = 0.1, num_classes: int = NUM_CLASSES,
                 name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        targets = ops.one_hot(labels, self.num_classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "num_classes": self.num_classes}


def training_loss(label_smoothing: float) -> str | keras.losses.Loss:
    """The loss a run compiles with: plain sparse cross-entropy unless smoothing is asked for."""
    if label_smoothing:
        return SmoothedSparseCrossentropy(label_smoothing)
    return "sparse_categorical_crossentropy"
