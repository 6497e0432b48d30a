"""Batches for Keras training, optionally augmented with albumentations.

Digits survive small rotations, shifts, zooms and shears, so these add label-preserving variety;
flips do not (a mirrored 2 is not a 2). Each batch gets its own transform seeded from
``(seed, epoch, batch)``, so augmented training is reproducible even with threaded workers.
"""

from __future__ import annotations

import math

import albumentations as A
import cv2
import keras
import numpy as np


def build_augmenter(seed: int, rotate_deg: float = 10.0, shift_fraction: float = 0.1,
                    zoom_fraction: float = 0.1, shear_deg: float = 5.0) -> A.Compose:
    """The digit augmentation: one random affine warp per image, black fill at the borders."""
    return A.Compose(
        [
            A.Affine(
                rotate=(-rotate_deg, rotate_deg),
                translate_percent=(-shift_fraction, shift_fraction),
                scale=(1.0 - zoom_fraction, 1.0 + zoom_fraction),
                shear=(-shear_deg, shear_deg),
                interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                p=1.0,
            )
        ],
        seed=seed,
    )


class DigitBatches(keras.utils.PyDataset):
    """Shuffled (optionally augmented) batches of uint8 digit images and integer labels.

    Images stay uint8 in memory (33,600 x 784 bytes); models rescale to [0, 1] themselves.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 augment: bool = True, shuffle: bool = True, workers: int = 1, **kwargs):
        super().__init__(workers=workers, use_multiprocessing=False, **kwargs)
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length. Received: {len(images)} "
                             f"images, {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size, self.seed = batch_size, seed
        self.augment, self.shuffle = augment, shuffle
        self.epoch = 0
        self.order = self._order_for(0)

    def _order_for(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = self.images[rows]
        if self.augment:
            augmenter = build_augmenter(seed=hash((self.seed, self.epoch, index)) & 0x7FFFFFFF)
            batch = np.stack([augmenter(image=image)["image"] for image in batch])
            batch = batch.reshape(len(rows), *self.images.shape[1:])
        return batch.astype(np.float32), self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order_for(self.epoch)
