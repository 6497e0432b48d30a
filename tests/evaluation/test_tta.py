import numpy as np
import pytest

from kaggle_digits.evaluation.tta import MAX_TTA, TTA_VIEWS, check_tta, predict_with_tta, view


def digits(count=300):
    rng = np.random.default_rng(0)
    images = np.zeros((count, 28, 28, 1), dtype=np.uint8)
    images[:, 8:20, 8:20, 0] = rng.integers(0, 256, size=(count, 12, 12))
    return images


def test_shift_view_moves_pixels_exactly():
    images = digits()
    shifted = view(images, 1, 0, 0.0)
    assert np.array_equal(shifted[:, :, 1:], images[:, :, :-1])
    assert not shifted[:, :, 0].any()
    assert view(images, 0, 0, 0.0) is images


def test_tta_keeps_row_order_and_shape():
    images = digits()

    def predict(batch):  # Each row's "class" is a function of that row alone.
        probs = np.zeros((len(batch), 10))
        totals = batch.reshape(len(batch), -1).astype(np.int64).sum(axis=1)
        probs[np.arange(len(batch)), totals % 10] = 1.0
        return probs

    single = predict_with_tta(predict, images, 1)
    assert single.shape == (300, 10) and single.dtype == np.float32
    # Pure shifts of a digit inside the frame keep its pixel total, hence its row's prediction.
    assert np.array_equal(predict_with_tta(predict, images, 5), single)
    averaged = predict_with_tta(predict, images, 7)
    assert averaged.shape == (300, 10) and np.allclose(averaged.sum(axis=1), 1.0)


def test_views_are_bounded():
    assert check_tta(MAX_TTA) == len(TTA_VIEWS)
    for bad in (0, MAX_TTA + 1):
        with pytest.raises(ValueError, match="tta must be between 1"):
            check_tta(bad)
