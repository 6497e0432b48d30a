"""Input variants that are part of a model: the model normalizes the digits it is given itself.

Ciresan et al. (CVPR 2012, "Multi-column deep neural networks for image classification"; their
ICDAR 2011 committee before it) trained identical networks on the digits as given and on the
digits with their bounding box rescaled to 10, 12, ..., 20 pixels wide, and averaged them: members
that see the digits differently err on different digits. Here that rescaling is a layer at the
model's entry, so every path that feeds a model (validation, out-of-fold, predict, ensembles, TTA,
distillation teachers, label issues) feeds it raw digits and the model normalizes them the way it
was trained; the width is also recorded in the run's config (``input_width``), and a run's model
whose layer says otherwise is refused when loaded (``check_input_width``).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kaggle_digits import UserError
from kaggle_digits.models.common import INPUT_SHAPE


@keras.saving.register_keras_serializable(package="kaggle_digits")
class WidthNormalization(layers.Layer):
    """Each digit's bounding box (its columns with any ink) rescaled to ``width`` pixels wide,
    its height left as it is (the aspect changes, as in Ciresan's width normalization), and its
    centre of mass moved to pixel (14, 14) of the 28x28 frame (counted from 0), where MNIST's
    own centring put it (the bundled sample's mean: 14.00, 14.00). A blank image
    passes unchanged. Bilinear resampling by one projective transform per image
    (``keras.ops.image.affine_transform``); nothing is learned, and it computes in float32
    whatever the model's precision."""

    def __init__(self, width: int, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.width = int(width)

    def call(self, images):
        images = ops.cast(images, "float32")
        height, side = images.shape[1], images.shape[2]
        columns = ops.sum(images, axis=(1, 3))  # Ink per column: (batch, side).
        rows = ops.sum(images, axis=(2, 3))
        mass = ops.sum(columns, axis=1)
        inked = ops.cast(columns > 0, "int32")
        first = ops.argmax(inked, axis=1)
        last = side - 1 - ops.argmax(ops.flip(inked, axis=1), axis=1)
        box_width = ops.cast(ops.maximum(last - first + 1, 1), "float32")
        blank = mass <= 0
        safe_mass = ops.where(blank, 1.0, mass)
        centre_x = ops.sum(columns * ops.arange(side, dtype="float32"), axis=1) / safe_mass
        centre_y = ops.sum(rows * ops.arange(height, dtype="float32"), axis=1) / safe_mass
        # The transform maps each output pixel to the input point it samples: x is stretched
        # by box_width / width about the centre of mass, which lands on (14, 14).
        inverse_scale = ops.where(blank, 1.0, box_width / self.width)
        frame_x, frame_y = side / 2.0, height / 2.0
        shift_x = ops.where(blank, 0.0, centre_x - frame_x * inverse_scale)
        shift_y = ops.where(blank, 0.0, centre_y - frame_y)
        zeros, ones = ops.zeros_like(mass), ops.ones_like(mass)
        transform = ops.stack([inverse_scale, zeros, shift_x, zeros, ones, shift_y, zeros, zeros],
                              axis=1)
        return ops.image.affine_transform(images, transform, interpolation="bilinear",
                                          fill_mode="constant", data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def with_input_width(model: keras.Model, width: int) -> keras.Model:
    """``model`` fed through :class:`WidthNormalization` (``width`` 0: ``model`` itself)."""
    if not width:
        return model
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    normalized = WidthNormalization(width, name="width_normalization")(inputs)
    return keras.Model(inputs, model(normalized), name=model.name)


def input_width_of(model: keras.Model) -> int:
    """The width a model normalizes its digits to (0: it takes them as given)."""
    widths = [layer.width for layer in model.layers if isinstance(layer, WidthNormalization)]
    return widths[0] if widths else 0


def check_input_width(model: keras.Model, expected: int, model_path) -> None:
    """Refuses a run's model whose input variant is not the one its run recorded: fed digits
    prepared otherwise than in training, it would score as another model.

    Raises:
        UserError: naming the file and both variants.
    """
    found = input_width_of(model)
    if found != expected:
        def variant(width: int) -> str:
            return f"digits rescaled to {width} pixels wide" if width else "the digits as given"

        raise UserError(f"{model_path}: the model takes {variant(found)}, but its run was "
                         f"trained on {variant(expected)} (input_width={expected} in its "
                         f"saved config); refusing to feed it digits it was not trained on")
