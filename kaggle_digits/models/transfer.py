"""Transfer learning from keras.applications bases (ResNet50, EfficientNetB0, VGG16).

Digits are resized and turned from gray to RGB inside the model with standard layers, so the saved
``.keras`` file takes the same raw 28x28 pixels as every other model and loads in safe mode.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import keras
from keras import layers

from kaggle_digits import UserError
from kaggle_digits.models.common import INPUT_SHAPE, probs_head
from kaggle_digits.models.registry import register_model

# ResNet50 and VGG16 expect "caffe" inputs: 0-255 BGR minus the ImageNet channel means. For a gray
# image replicated to three channels the channel order does not matter, so a Normalization layer
# with those means does the whole preprocessing. EfficientNet normalises inside the model.
CAFFE_MEANS = [103.939, 116.779, 123.68]


class WeightsUnavailableError(UserError):
    """ImageNet weights could not be downloaded (offline) and are not in the Keras cache."""


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def _resolve_weights(weights: str | None) -> str | None:
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise UserError(f"weights must be 'imagenet', 'none' or a weights file. Received: "
                         f"weights={weights!r} (no such file)")
    return str(path)


def _load_base(name: str, constructor: Callable[..., keras.Model], weights: str | None,
               image_size: int) -> keras.Model:
    try:
        return constructor(include_top=False, weights=weights,
                           input_shape=(image_size, image_size, 3))
    except Exception as exc:  # keras.utils.get_file raises a bare Exception on network errors.
        if weights != "imagenet" or "URL fetch failure" not in str(exc):
            raise
        raise WeightsUnavailableError(
            f"cannot download the ImageNet weights of {name} (no internet?): put the weights file "
            f"Keras asks for into {keras_cache_dir()}, or use --weights none (random start) or "
            f"--weights PATH (a weights file of the base without its top)") from None


def build_transfer_model(name: str, constructor: Callable[..., keras.Model], caffe_inputs: bool,
                         weights: str | None = "imagenet", image_size: int = 32,
                         fine_tune: int = 0, dropout_rate: float = 0.3) -> keras.Model:
    """Frozen pretrained base plus a new head; ``fine_tune`` unfreezes the base's top N layers.

    Batch-norm layers of the base stay frozen and in inference mode even when fine-tuning, the usual
    practice when a small data set would otherwise overwrite their ImageNet statistics.
    """
    if image_size < 32:
        raise UserError(f"image_size must be at least 32 for keras.applications bases. "
                         f"Received: image_size={image_size}")
    base = _load_base(name, constructor, _resolve_weights(weights), image_size)
    base.trainable = fine_tune > 0
    if fine_tune > 0:
        for layer in base.layers[:-fine_tune]:
            layer.trainable = False
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Resizing(image_size, image_size, name="resize")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if caffe_inputs:
        x = layers.Normalization(mean=CAFFE_MEANS, variance=[1.0, 1.0, 1.0], name="caffe_means")(x)
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name=name)


TRANSFER_DEFAULTS = dict(epochs=5, batch_size=64, learning_rate=1e-3, lr_schedule="cosine",
                         augment=False, fine_tune_learning_rate=1e-4)


@register_model("resnet50", "ImageNet ResNet50 base (frozen; --fine-tune N), 32x32 RGB input, "
                "new dense head", **TRANSFER_DEFAULTS)
def resnet50(weights: str | None = "imagenet", image_size: int = 32, fine_tune: int = 0,
             dropout_rate: float = 0.3) -> keras.Model:
    """Transfer learning from ResNet50 (He et al. 2016), as in seed report 001's transfer run."""
    return build_transfer_model("resnet50", keras.applications.ResNet50, True, weights,
                                image_size, fine_tune, dropout_rate)


@register_model("efficientnetb0", "ImageNet EfficientNetB0 base (frozen; --fine-tune N), 32x32 "
                "RGB input, new dense head", **TRANSFER_DEFAULTS)
def efficientnetb0(weights: str | None = "imagenet", image_size: int = 32, fine_tune: int = 0,
                   dropout_rate: float = 0.3) -> keras.Model:
    """Transfer learning from EfficientNetB0 (Tan and Le 2019), which rescales inputs itself."""
    return build_transfer_model("efficientnetb0", keras.applications.EfficientNetB0, False,
                                weights, image_size, fine_tune, dropout_rate)


@register_model("vgg16", "ImageNet VGG16 base (frozen; --fine-tune N), 32x32 RGB input, new "
                "dense head", **TRANSFER_DEFAULTS)
def vgg16(weights: str | None = "imagenet", image_size: int = 32, fine_tune: int = 0,
          dropout_rate: float = 0.3) -> keras.Model:
    """Transfer learning from VGG16 (Simonyan and Zisserman 2015), the seed reports' VGG-style
    network."""
    return build_transfer_model("vgg16", keras.applications.VGG16, True, weights, image_size,
                                fine_tune, dropout_rate)
