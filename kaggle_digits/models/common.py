"""Pieces every architecture shares: the input shape and the raw-pixel entry."""

from __future__ import annotations

import keras
from keras import layers

from kaggle_digits.data.load import IMAGE_SIDE, NUM_CLASSES

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


def pixel_input() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The shared model entry: raw pixels in, [0, 1] floats out (a standard Rescaling layer, so a
    saved model predicts from test.csv values directly and loads in safe mode)."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)


def probs_head(features: keras.KerasTensor) -> keras.KerasTensor:
    """The shared model exit: a softmax over the ten digits, always float32 (under
    ``precision=mixed_bfloat16`` the rest computes in bfloat16; probabilities and the loss
    should not)."""
    return layers.Dense(NUM_CLASSES, activation="softmax", name="probs", dtype="float32")(features)
