"""The label-smoothed loss for integer labels."""

import keras
import numpy as np
import pytest

from kaggle_digits.models.losses import SmoothedSparseCrossentropy, training_loss
from kaggle_digits.training.config import TrainConfig


def test_smoothed_loss_matches_hand_computed_cross_entropy():
    probs = np.array([[0.7, 0.1, 0.05, 0.05, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01],
                      [0.1] * 10], dtype="float32")
    labels = np.array([0, 3])
    epsilon = 0.2
    targets = np.full((2, 10), epsilon / 10)
    targets[[0, 1], labels] += 1 - epsilon
    expected = -(targets * np.log(probs)).sum(axis=1).mean()
    loss = SmoothedSparseCrossentropy(epsilon)(labels, probs)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_zero_smoothing_is_plain_sparse_cross_entropy():
    assert training_loss(0.0) == "sparse_categorical_crossentropy"
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=8).astype("float32")
    labels = np.arange(8)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    assert float(SmoothedSparseCrossentropy(0.0)(labels, probs)) == pytest.approx(float(plain),
                                                                                  rel=1e-5)


def test_smoothing_is_an_architecture_default_and_checked():
    assert TrainConfig(arch="mlp").resolved().label_smoothing == 0.0
    assert TrainConfig(arch="mlp", label_smoothing=0.05).resolved().label_smoothing == 0.05
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        TrainConfig(label_smoothing=1.0).resolved()
