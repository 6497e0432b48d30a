"""Pieces every architecture shares: the input shape and the raw-pixel entry."""

from __future__ import annotations

import keras
from keras import layers

from kaggle_digits.data import IMAGE_SIDE

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


def pixel_input() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The shared model entry: raw pixels in, [0, 1] floats out (a standard Rescaling layer, so a
    saved model predicts from test.csv values directly and loads in safe mode)."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
