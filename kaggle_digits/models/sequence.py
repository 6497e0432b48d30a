"""Models that read a digit as data rather than as an image: an MLP on the 784 pixels, recurrent
networks and a small transformer over the 28 image rows (seed report 000, sections 7 and 8)."""

from __future__ import annotations

import keras
from keras import layers

from kaggle_digits import UserError
from kaggle_digits.data.load import IMAGE_SIDE, NUM_PIXELS
from kaggle_digits.models.common import pixel_input, probs_head
from kaggle_digits.models.registry import register_model


def row_sequence(x):
    """(28, 28, 1) image -> sequence of 28 rows of 28 pixels, with a standard Reshape layer."""
    return layers.Reshape((IMAGE_SIDE, IMAGE_SIDE), name="rows")(x)


@register_model(
    "mlp",
    "dense 512-256 on the 784 flattened pixels with dropout (seed report baseline MLP)",
    epochs=20, batch_size=128, learning_rate=1e-3, lr_schedule="cosine", augment=False,
)
def mlp(hidden_units: tuple[int, ...] | str = (512, 256), dropout_rate: float = 0.3,
        activation: str = "relu") -> keras.Model:
    """The multilayer perceptron of the seed reports: flattened pixels through dense layers,
    each followed by dropout, then softmax."""
    if isinstance(hidden_units, str):
        hidden_units = tuple(int(u) for u in hidden_units.replace("-", ",").split(",") if u)
    inputs, x = pixel_input()
    x = layers.Reshape((NUM_PIXELS,), name="flatten")(x)
    for index, units in enumerate(hidden_units, start=1):
        x = layers.Dense(units, activation=activation, name=f"dense{index}")(x)
        x = layers.Dropout(dropout_rate, name=f"dropout{index}")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="mlp")


def _recurrent_classifier(name: str, cell: type, units: int, dense_units: int,
                          dropout_rate: float) -> keras.Model:
    inputs, x = pixel_input()
    x = cell(units, name=name.lower())(row_sequence(x))
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name=name)


@register_model(
    "lstm",
    "LSTM(128) over the 28 image rows -> dense 64 -> softmax (seed report 000, section 7)",
    epochs=12, batch_size=128, learning_rate=2e-3, lr_schedule="cosine", augment=False,
)
def lstm(units: int = 128, dense_units: int = 64, dropout_rate: float = 0.0) -> keras.Model:
    """Seed report 000 section 7: each image row is one time step of a 28-step sequence."""
    return _recurrent_classifier("lstm", layers.LSTM, units, dense_units, dropout_rate)


@register_model(
    "rnn",
    "GRU(128) over the 28 image rows -> dense 64 -> softmax (GRU variant of the seed LSTM)",
    epochs=12, batch_size=128, learning_rate=2e-3, lr_schedule="cosine", augment=False,
)
def rnn(units: int = 128, dense_units: int = 64, dropout_rate: float = 0.0) -> keras.Model:
    """The seed report's recurrent model with a GRU cell in place of the LSTM."""
    return _recurrent_classifier("rnn", layers.GRU, units, dense_units, dropout_rate)


@keras.saving.register_keras_serializable(package="kaggle_digits")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each sequence position, so attention knows which row is which.

    Implements ``get_config`` so models using it save to ``.keras`` and load in safe mode.
    """

    def __init__(self, sequence_length: int, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.sequence_length, input_shape[-1]),
            initializer="glorot_uniform")

    def call(self, inputs):
        return inputs + self.position_embeddings

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length}


@register_model(
    "transformer",
    "rows -> dense to d_model 64 + positions -> self-attention and MLP blocks with residuals and "
    "LayerNormalization -> flatten -> dense (seed report 000, section 8)",
    epochs=15, batch_size=128, learning_rate=2e-3, lr_schedule="cosine", augment=False,
)
def transformer(d_model: int = 64, num_heads: int = 4, mlp_units: int = 128,
                num_blocks: int = 1, dense_units: int = 128, dropout_rate: float = 0.1
                ) -> keras.Model:
    """Seed report 000 section 8: a small encoder over the 28 image rows (post-norm, as in
    Vaswani et al. 2017), flattened into a dense classifier."""
    if d_model % num_heads:
        raise UserError(f"d_model must be divisible by num_heads. Received: d_model={d_model}, "
                         f"num_heads={num_heads}")
    inputs, x = pixel_input()
    x = layers.Dense(d_model, name="project")(row_sequence(x))
    x = PositionEmbedding(IMAGE_SIDE, name="positions")(x)
    for block in range(1, num_blocks + 1):
        attention = layers.MultiHeadAttention(num_heads, d_model // num_heads,
                                              dropout=dropout_rate, name=f"attention{block}")(x, x)
        x = layers.LayerNormalization(name=f"norm{block}a")(layers.Add()([x, attention]))
        hidden = layers.Dense(mlp_units, activation="gelu", name=f"mlp{block}a")(x)
        hidden = layers.Dense(d_model, name=f"mlp{block}b")(hidden)
        hidden = layers.Dropout(dropout_rate, name=f"mlp_dropout{block}")(hidden)
        x = layers.LayerNormalization(name=f"norm{block}b")(layers.Add()([x, hidden]))
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = probs_head(x)
    return keras.Model(inputs, outputs, name="transformer")
