"""Training losses and accuracy that Keras has only for one kind of target, made to take integer
labels (validation) and soft targets (a distilled student's training rows) alike."""

from __future__ import annotations

import keras
from keras import ops

from kaggle_digits.data.load import NUM_CLASSES


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


def _is_soft(y_true, y_pred) -> bool:
    """Whether ``y_true`` holds a probability row per image (static shapes: each of Keras'
    train and test steps is traced with its own)."""
    return len(y_true.shape) == len(y_pred.shape) == 2 and y_true.shape[-1] == y_pred.shape[-1]


@keras.saving.register_keras_serializable(package="kaggle_digits")
class SoftTargetCrossentropy(SmoothedSparseCrossentropy):
    """Cross-entropy against soft targets on training rows (a distilled student's mix of label and
    teacher, Hinton et al. 2015) and against label-smoothed integer labels on validation rows, so
    a student's validation loss is comparable with its teacher's."""

    def __init__(self, label_smoothing: float = 0.0, num_classes: int = NUM_CLASSES,
                 name: str = "soft_target_crossentropy", **kwargs):
        super().__init__(label_smoothing=label_smoothing, num_classes=num_classes, name=name,
                         **kwargs)

    def call(self, y_true, y_pred):
        if _is_soft(y_true, y_pred):
            return keras.losses.categorical_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred)
        return super().call(y_true, y_pred)


@keras.saving.register_keras_serializable(package="kaggle_digits")
class DigitAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy against integer labels, or against the most likely class of soft targets (a
    student's training mix keeps its label the most likely class)."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(fn=digit_accuracy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


def digit_accuracy(y_true, y_pred):
    labels = (ops.argmax(y_true, axis=-1) if _is_soft(y_true, y_pred)
              else ops.reshape(y_true, (-1,)))
    return ops.cast(ops.equal(ops.cast(labels, "int32"),
                              ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")


def training_loss(label_smoothing: float, soft_targets: bool = False) -> str | keras.losses.Loss:
    """The loss a run compiles with: plain sparse cross-entropy unless smoothing or a teacher's
    soft targets ask for more."""
    if soft_targets:
        return SoftTargetCrossentropy(label_smoothing)
    if label_smoothing:
        return SmoothedSparseCrossentropy(label_smoothing)
    return "sparse_categorical_crossentropy"


def training_accuracy(soft_targets: bool = False) -> keras.metrics.Metric:
    """The ``accuracy`` metric a run compiles with (its checkpoints and early stopping watch it)."""
    if soft_targets:
        return DigitAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
