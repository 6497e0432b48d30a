"""Input variants inside the model: width normalization, its safe-mode round trip, its check."""

import numpy as np
import pytest
from helpers import ROOT

from kaggle_digits.data.load import read_digits_csv
from kaggle_digits.evaluation.predict import load_keras_model
from kaggle_digits.models import build_model
from kaggle_digits.models.preprocessing import WidthNormalization, input_width_of


@pytest.fixture(scope="module")
def sample_digits():
    images, _ = read_digits_csv(ROOT / "data" / "sample" / "train.csv.gz", labelled=True)
    return images[:300].astype("float32")


def ink_box(image: np.ndarray, threshold: float) -> tuple[int, int]:
    """(width, height) of the pixels above ``threshold``."""
    columns = np.flatnonzero((image[..., 0] > threshold).any(axis=0))
    rows = np.flatnonzero((image[..., 0] > threshold).any(axis=1))
    return columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    pixels = image[..., 0].astype(float)
    return (tuple(float((pixels.sum(axis=axis) * np.arange(28)).sum() / pixels.sum())
                  for axis in (0, 1)))


@pytest.mark.parametrize("width", [10, 20])
def test_width_normalization_rescales_the_box_keeps_the_height_and_centres_the_mass(
        width, sample_digits):
    normalized = np.asarray(WidthNormalization(width)(sample_digits))
    assert normalized.shape == sample_digits.shape
    before = np.array([ink_box(image, 0) for image in sample_digits])
    # Bilinear resampling spreads a faint edge a pixel further: count the clearly inked pixels.
    after = np.array([ink_box(image, 32) for image in normalized])
    assert np.mean(np.abs(after[:, 0] - width) <= 1) > 0.9
    assert np.mean(np.abs(after[:, 1] - before[:, 1]) <= 1) > 0.9
    np.testing.assert_allclose([centre_of_mass(image) for image in normalized], 14.0, atol=0.5)
    # The digits' widths differed before; now they agree.
    assert before[:, 0].std() > 2 and after[:, 0].std() < 1


def test_width_normalization_passes_a_blank_image_unchanged():
    blank = np.zeros((2, 28, 28, 1), dtype="float32")
    assert not np.asarray(WidthNormalization(20)(blank)).any()


def test_a_model_with_an_input_width_reloads_in_safe_mode_and_refuses_another_variant(
        sample_digits, tmp_path):
    model = build_model("simple_cnn", input_width=14)
    plain = build_model("simple_cnn")
    assert input_width_of(model) == 14 and input_width_of(plain) == 0
    model.save(tmp_path / "w14.keras")
    loaded = load_keras_model(tmp_path / "w14.keras", input_width=14)
    np.testing.assert_allclose(np.asarray(loaded(sample_digits[:8])),
                               np.asarray(model(sample_digits[:8])), rtol=1e-5, atol=1e-6)
    assert input_width_of(load_keras_model(tmp_path / "w14.keras")) == 14  # A bare file.
    with pytest.raises(ValueError, match=r"w14.keras: the model takes digits rescaled to 14 "
                                         r"pixels wide, but its run was trained on the digits "
                                         r"as given \(input_width=0"):
        load_keras_model(tmp_path / "w14.keras", input_width=0)
