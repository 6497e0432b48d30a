"""Convolutional networks for 28x28 digits.

Every model takes raw pixels (0-255) of shape (28, 28, 1) and rescales them itself with a standard
``Rescaling`` layer, so a saved ``.keras`` file predicts from test.csv values directly and loads in
Keras safe mode (no Lambda layers).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from kaggle_digits import UserError
from kaggle_digits.data.load import IMAGE_SIDE
from kaggle_digits.models.common import pixel_input, probs_head
from kaggle_digits.models.registry import get_model_spec, register_model

# Keras' default 0.99 leaves the moving statistics near their initial values for the first few
# hundred steps, so short runs (the bundled sample, quick presets) evaluated near chance while
# training well; 0.9 tracks within tens of steps and costs nothing on the full data.
BN_MOMENTUM = 0.9

IMPROVED_CNN_STEMS = ("conv5", "space_to_depth")
IMPROVED_CNN_STEM_NORMS = ("batch", "none")


def _parse_filters(filters: Sequence[int] | str, count: int) -> list[int]:
    if isinstance(filters, str):
        filters = [int(part) for part in filters.replace("-", ",").split(",") if part]
    filters = [int(f) for f in filters]
    if len(filters) != count or any(f <= 0 for f in filters):
        raise UserError(f"expected {count} positive filter counts. Received: filters={filters}")
    return filters


@register_model(
    "simple_cnn",
    "conv32-pool-conv64-pool-conv64-dense64 (TensorFlow CNN tutorial, seed report baseline)",
    epochs=10, batch_size=64, learning_rate=1e-3, lr_schedule="plateau", augment=False,
)
def simple_cnn(filters: Sequence[int] | str = (32, 64, 64), kernel_size: int = 3, stride: int = 1,
               padding: str = "valid", activation: str = "relu", dense_units: int = 64,
               dropout_rate: float = 0.0) -> keras.Model:
    """The baseline CNN of the seed reports, after the TensorFlow "Convolutional Neural Network"
    tutorial: three valid-padded convolutions with two max-pools, one dense layer. ``stride``
    applies to the first convolution (seed report 001's stride-2 run); the later ones keep 1 so
    the feature maps do not vanish; with stride 2, ``padding="same"`` is needed for the same
    reason."""
    first, second, third = _parse_filters(filters, 3)
    if padding not in ("valid", "same"):
        raise UserError(f"padding must be 'valid' or 'same'. Received: padding={padding!r}")
    shrink = kernel_size - 1 if padding == "valid" else 0
    side = (IMAGE_SIDE - shrink - 1) // stride + 1
    for _ in range(2):  # A pool, then the next convolution.
        side = side // 2 - shrink
    if side < 1:
        raise UserError(f"kernel_size={kernel_size} with stride={stride} and {padding} padding "
                         f"shrinks the 28x28 image to nothing before the third convolution; use "
                         f"a smaller kernel or stride, or padding='same'")
    inputs, x = pixel_input()
    x = layers.Conv2D(first, kernel_size, strides=stride, padding=padding, activation=activation,
                      name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(second, kernel_size, padding=padding, activation=activation,
                      name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Conv2D(third, kernel_size, padding=padding, activation=activation,
                      name="conv3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation=activation, name="dense")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="simple_cnn")


def space_to_depth(x, block: int):
    """Each ``block`` x ``block`` patch of pixels becomes one position with block**2 channels
    (``tf.nn.space_to_depth``, built from Reshape and Permute so saved models load in safe mode)."""
    height, width, channels = x.shape[1:]
    x = layers.Reshape((height // block, block, width // block, block, channels),
                       name="s2d_split")(x)
    x = layers.Permute((1, 3, 2, 4, 5), name="s2d_gather")(x)
    return layers.Reshape((height // block, width // block, block * block * channels),
                          name="s2d_stack")(x)


def conv_bn_relu(x, filters: int, kernel_size: int, name: str, activation: str = "relu",
                 stride: int = 1, batch_norm: bool = True):
    """Convolution without bias (batch norm supplies it), then batch norm, then activation;
    without batch norm the convolution keeps its bias."""
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding="same",
                      use_bias=not batch_norm, name=f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


@register_model(
    "improved_cnn",
    "batch-normalised CNN (5x5 stem, 3x3 pairs, dense head) with dropout; trained with "
    "albumentations and a warm-up + cosine schedule",
    epochs=30, batch_size=128, learning_rate=3e-3, lr_schedule="cosine", augment=True,
    label_smoothing=0.1,
)
def improved_cnn(filters: Sequence[int] | str = (16, 32, 32, 64), kernel_size: int = 3,
                 stride: int = 1, dense_units: int = 128, dropout_rate: float = 0.1,
                 activation: str = "relu", stem: str = "conv5",
                 stem_norm: str = "batch") -> keras.Model:
    """A compact VGG-style CNN in the line of the top Kaggle MNIST kernels (Deotte's "How to
    choose CNN architecture MNIST": batch norm after every convolution, dropout, a dense head),
    narrowed for two CPU cores.

    Trained by default with label smoothing, light dropout and the epochs that won, paired and
    out-of-fold, against the alternatives (the decisions in docs/results.md): with augmentation
    already regularising, heavy dropout under-fitted.

    Widths are multiples of 16 on purpose: oneDNN runs 24-channel convolutions much slower than
    16 or 32 on this class of CPU (measured, BENCHMARKS.md). ``kernel_size`` sets the 3x3
    blocks, ``stride`` the stem's.

    ``stem="space_to_depth"`` stacks each 2x2 block of pixels as 4 channels of one 14x14
    position and reads them with a 3x3 convolution (the input stage of TResNet, Ridnik et al.
    2021) instead of the 5x5 convolution on one channel at 28x28 and its pooling, which use a
    CPU's vector units poorly: faster, and within noise of the 5x5 stem (docs/results.md).

    ``stem_norm="none"`` drops the stem's batch norm (its convolution keeps a bias): at 28x28x16
    it normalises the largest activation map of the net (bench/flops.py --breakdown): a little
    faster, at no dependable accuracy cost (docs/results.md).
    """
    if stem not in IMPROVED_CNN_STEMS:
        raise UserError(f"stem must be one of {', '.join(IMPROVED_CNN_STEMS)}. "
                         f"Received: stem={stem!r}")
    if stem_norm not in IMPROVED_CNN_STEM_NORMS:
        raise UserError(f"stem_norm must be one of {', '.join(IMPROVED_CNN_STEM_NORMS)}. "
                         f"Received: stem_norm={stem_norm!r}")
    stem_bn = stem_norm == "batch"
    stem_filters, mid_a, mid_b, top = _parse_filters(filters, 4)
    inputs, x = pixel_input()
    if stem == "space_to_depth":
        x = space_to_depth(x, 2)
        x = conv_bn_relu(x, stem_filters, 3, "stem", activation, stride, stem_bn)
    else:
        x = conv_bn_relu(x, stem_filters, 5, "stem", activation, stride, stem_bn)
        x = layers.MaxPooling2D(name="pool1")(x)
    x = conv_bn_relu(x, mid_a, kernel_size, "block2a", activation)
    x = conv_bn_relu(x, mid_b, kernel_size, "block2b", activation)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Dropout(dropout_rate / 4, name="drop2")(x)
    x = conv_bn_relu(x, top, kernel_size, "block3", activation)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout_rate, name="drop3")(x)
    x = layers.Dense(dense_units, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="dense_bn")(x)
    x = layers.Activation(activation, name="dense_act")(x)
    x = layers.Dropout(dropout_rate, name="drop_head")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="improved_cnn")



@register_model(
    "strided_cnn",
    "batch-normalised CNN that downsamples by strided 5x5 convolutions instead of pooling "
    "(valid 3x3 pairs, a 4x4 top); trained like improved_cnn",
    **get_model_spec("improved_cnn").train_defaults,  # Its recipe: the comparison is the design.
)
def strided_cnn(filters: Sequence[int] | str = (16, 32, 64), dropout_rate: float = 0.25,
                activation: str = "relu") -> keras.Model:
    """A second family for ensembles: the design Deotte's "How to choose CNN architecture MNIST"
    arrived at (two valid 3x3 convolutions, then a 5x5 convolution of stride 2 that learns its
    own downsampling where improved_cnn max-pools; twice; a 4x4 convolution reads the last 4x4
    map), at half its widths so that a fit costs about what improved_cnn's does on two cores.

    Its receptive fields, downsampling and head all differ from improved_cnn's, which is the
    point: members of one design share most of their mistakes, and a bag gains only from a
    member that errs elsewhere. It does err elsewhere more than any other candidate, but it is
    weaker alone, and a bag of the two did not beat improved_cnn alone (docs/results.md), so
    the recipes do not use it. ``filters`` are the three stages' widths; ``dropout_rate``
    follows each stage and the head.
    """
    stage_a, stage_b, top = _parse_filters(filters, 3)
    inputs, x = pixel_input()
    for stage, width in (("a", stage_a), ("b", stage_b)):
        x = _valid_conv_bn(x, width, 3, f"block{stage}1", activation)
        x = _valid_conv_bn(x, width, 3, f"block{stage}2", activation)
        x = conv_bn_relu(x, width, 5, f"down{stage}", activation, stride=2)
        x = layers.Dropout(dropout_rate, name=f"drop{stage}")(x)
    x = _valid_conv_bn(x, top, 4, "top", activation)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout_rate, name="drop_head")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="strided_cnn")


def _valid_conv_bn(x, filters: int, kernel_size: int, name: str, activation: str):
    """An unpadded convolution (the map shrinks by kernel_size - 1), batch norm, activation."""
    x = layers.Conv2D(filters, kernel_size, padding="valid", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


@register_model(
    "fast_cnn",
    "conv5x5(24)-pool-conv3x3(32)-pool-dense256, no normalisation or dropout: the fastest "
    "published route to 99% on MNIST, trained briefly at a hot one-cycle rate",
    epochs=2, batch_size=256, learning_rate=1e-2, lr_schedule="cosine", augment=False,
)
def fast_cnn(filters: Sequence[int] | str = (24, 32), dense_units: int = 256,
             activation: str = "relu") -> keras.Model:
    """The speedrun network of Keller Jordan's MNIST records (a 5x5 convolution of 24 maps
    and a 3x3 convolution of 32, each max-pooled then activated, a dense layer of 256), trained
    as there with Adam at 0.01, betas (0.7, 0.9), under a one-cycle schedule (``--preset fast``
    sets them), for two epochs here, where an epoch is 33,600 rows rather than 60,000: about a
    tenth of improved_cnn's work an image, and no layer that needs many steps to settle (batch
    statistics, dropout)."""
    first, second = _parse_filters(filters, 2)
    inputs, x = pixel_input()
    x = layers.Conv2D(first, 5, name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Activation(activation, name="act1")(x)
    x = layers.Conv2D(second, 3, name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Activation(activation, name="act2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation=activation, name="dense")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="fast_cnn")
