import numpy as np
import pytest

from kaggle_digits.augment import DigitBatches, build_augmenter


def digit_images(count=20):
    images = np.zeros((count, 28, 28, 1), dtype=np.uint8)
    images[:, 10:18, 12:16] = 255  # A bar in the middle, like a "1".
    return images


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


def test_augmentation_keeps_shape_range_and_labels_and_is_reproducible():
    images, labels = digit_images(), np.arange(20)
    first = DigitBatches(images, labels, batch_size=10, seed=5, augment=True)[0]
    second = DigitBatches(images, labels, batch_size=10, seed=5, augment=True)[0]
    assert first[0].shape == (10, 28, 28, 1) and first[0].dtype == np.float32
    assert 0 <= first[0].min() and first[0].max() <= 255
    np.testing.assert_array_equal(first[0], second[0])
    plain = images[DigitBatches(images, labels, 10, seed=5, augment=False).order[:10]]
    assert not np.array_equal(first[0], plain.astype(np.float32))
    np.testing.assert_array_equal(first[1], second[1])


def test_augmenter_moves_ink_only_a_little():
    image = digit_images(1)[0]
    warped = build_augmenter(seed=0)(image=image)["image"]
    assert warped.shape == image.shape
    assert abs(int(warped.astype(int).sum()) - int(image.astype(int).sum())) < 0.5 * image.sum()


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        DigitBatches(digit_images(3), np.arange(2), batch_size=2, seed=0)
