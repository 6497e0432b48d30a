import numpy as np
import pytest
from helpers import digit_images

from kaggle_digits.data.augment import augment_epoch
from kaggle_digits.data.batches import DigitBatches


def test_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    images, labels = digit_images(), np.arange(20)
    batches = DigitBatches(images, labels, batch_size=8, seed=3, augment=False)
    assert len(batches) == 3
    seen = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(seen.tolist()) == list(range(20))
    again = DigitBatches(images, labels, batch_size=8, seed=3, augment=False)
    assert np.array_equal(again[0][1], batches[0][1])
    batches.on_epoch_end()
    assert not np.array_equal(batches.order, again.order)


def test_augmented_batches_pair_each_warped_image_with_its_label():
    images = digit_images()
    images[:, 0, 0, 0] = np.arange(20)  # Tag each image so rows can be traced.
    labels = np.arange(20)
    batches = DigitBatches(images, labels, batch_size=10, seed=5, augment=True, epochs=2)
    try:
        pixels, batch_labels = batches[0]
        assert pixels.shape == (10, 28, 28, 1) and pixels.dtype == np.float32
        expected = augment_epoch(images, 5, 0)[batch_labels]
        np.testing.assert_array_equal(pixels, expected.astype(np.float32))
        batches.on_epoch_end()
        np.testing.assert_array_equal(batches[0][0],
                                      augment_epoch(images, 5, 1)[batches[0][1]].astype(np.float32))
    finally:
        batches.close()


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        DigitBatches(digit_images(3), np.arange(2), batch_size=2, seed=0, augment=False)
