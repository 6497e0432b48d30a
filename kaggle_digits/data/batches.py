"""Keras batches of digit images: shuffled per epoch, optionally augmented an epoch ahead."""

from __future__ import annotations

import math

import keras
import numpy as np

from kaggle_digits.data.augment import EpochAugmenter


class DigitBatches(keras.utils.PyDataset):
    """Shuffled (optionally augmented) batches of digit images and integer labels.

    Images stay uint8 in memory (33,600 x 784 bytes); models rescale to [0, 1] themselves.
    With augmentation, each epoch sees every image once under a fresh random warp.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 augment: bool = True, shuffle: bool = True, epochs: int | None = None,
                 start_epoch: int = 0, augment_ranges: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length. Received: {len(images)} "
                             f"images, {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.seed = batch_size, seed
        self.shuffle = shuffle
        # A resumed run starts at its next epoch and sees the same batches it would have seen.
        self.augmenter = (EpochAugmenter(images, seed, epochs, start_epoch=start_epoch,
                                         ranges=augment_ranges) if augment else None)
        self.epoch = start_epoch
        self._start_epoch()

    def _start_epoch(self) -> None:
        # Augmented images are fetched on the epoch's first batch, not here: Keras also calls
        # on_epoch_end after the last epoch, which must not wait for an epoch never trained.
        self.epoch_images = None if self.augmenter else self.images
        self.order = (np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))
                      if self.shuffle else np.arange(len(self.images)))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.epoch_images is None:
            self.epoch_images = self.augmenter.images_for(self.epoch)
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.epoch_images[rows].astype(np.float32), self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._start_epoch()

    def close(self) -> None:
        if self.augmenter is not None:
            self.augmenter.close()
