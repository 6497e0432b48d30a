"""Digit augmentation with albumentations, prepared an epoch ahead in a separate process.

Digits survive small rotations, shifts, zooms, shears and local bends of their strokes, so these
add label-preserving variety; flips do not (a mirrored 2 is not a 2). Each epoch's warps are
seeded from ``(seed, epoch)``, so augmented training is reproducible. This module must not
import TensorFlow: the worker process imports it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import albumentations as A
import cv2
import numpy as np

from kaggle_digits.training.runtime import leave_with_parent

WARP_GROUP_SIZE = 8
# Up to this many images an epoch's warps cost less than starting a worker process (seconds
# before its first epoch on 2 cores): they are done in the training process.
IN_PROCESS_MAX_IMAGES = 2000


def build_augmenter(seed: int, rotate_deg: float = 10.0, shift_fraction: float = 0.1,
                    zoom_fraction: float = 0.1, shear_deg: float = 5.0, crop_size: int = 0,
                    grid_distort: float = 0.0, grid_steps: int = 4, elastic_alpha: float = 0.0,
                    elastic_sigma: float = 4.0, image_size: int = 28) -> A.Compose:
    """The digit augmentation: one random affine warp per image, black fill at the borders,
    optionally preceded by a random crop resized back (``crop_size`` pixels square, 0 = off)
    and followed by distortions that bend strokes rather than the whole frame.

    The distortions are the ones behind the best honest MNIST results: grid distortion
    (``grid_steps`` x ``grid_steps`` cells whose edges move by up to ``grid_distort`` of a cell,
    as in ttdoucet's committee with a 25x25 crop), and Simard et al.'s elastic distortion (2003):
    a uniform random displacement field smoothed by a Gaussian of ``elastic_sigma`` pixels and
    scaled by ``elastic_alpha`` (0 = off). Left off, the pipeline is the affine warp alone,
    drawing the same random numbers as before these options existed.
    """
    transforms = []
    if crop_size:
        transforms += [A.RandomCrop(crop_size, crop_size, p=1.0),
                       A.Resize(image_size, image_size, interpolation=cv2.INTER_LINEAR, p=1.0)]
    transforms.append(A.Affine(
        rotate=(-rotate_deg, rotate_deg),
        translate_percent=(-shift_fraction, shift_fraction),
        scale=(1.0 - zoom_fraction, 1.0 + zoom_fraction),
        shear=(-shear_deg, shear_deg),
        interpolation=cv2.INTER_LINEAR,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        p=1.0,
    ))
    if grid_distort:
        transforms.append(A.GridDistortion(num_steps=grid_steps,
                                           distort_limit=(-grid_distort, grid_distort),
                                           interpolation=cv2.INTER_LINEAR,
                                           border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
    if elastic_alpha:
        transforms.append(A.ElasticTransform(alpha=elastic_alpha, sigma=elastic_sigma,
                                             interpolation=cv2.INTER_LINEAR,
                                             noise_distribution="uniform",
                                             border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
    return A.Compose(transforms, seed=seed)


def augment_epoch(images: np.ndarray, seed: int, epoch: int,
                  group_size: int = WARP_GROUP_SIZE, ranges: dict | None = None) -> np.ndarray:
    """Warp every image once, reproducibly for ``(seed, epoch)``.

    albumentations spends a fixed cost of Python per call whatever the image size, so images
    are warped ``group_size`` at a time, stacked as channels. Groups are redrawn
    from a seeded permutation every epoch, so group-mates change and land in different batches.
    ``ranges``: ``build_augmenter``'s keyword arguments (default: its defaults).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(images))
    augmenter = build_augmenter(seed=int(rng.integers(2**31)), **(ranges or {}))
    out = np.empty_like(images)
    for start in range(0, len(images), group_size):
        rows = order[start:start + group_size]
        stack = np.ascontiguousarray(images[rows, :, :, 0].transpose(1, 2, 0))
        warped = augmenter(image=stack)["image"].reshape(stack.shape)
        out[rows, :, :, 0] = warped.transpose(2, 0, 1)
    return out


_worker_images: np.ndarray | None = None


def _init_worker(trainer: int) -> None:
    cv2.setNumThreads(1)  # One process, one core: the other belongs to training.
    leave_with_parent(trainer)  # A trainer killed outright leaves no idle worker holding images.


def _receive_images(path: str) -> None:
    """Load the images the trainer left in ``path`` and remove the file (once loaded, it is
    this process's copy)."""
    global _worker_images
    _worker_images = np.load(path)
    os.unlink(path)


def _augment_in_worker(seed: int, epoch: int, ranges: dict | None) -> np.ndarray:
    return augment_epoch(_worker_images, seed, epoch, ranges=ranges)


class EpochAugmenter:
    """Augments the next epoch's images in a separate process while the current epoch trains.

    albumentations' per-call Python work, done in threads of the training process, held the GIL
    that the training loop needs and cut throughput by half on two cores (BENCHMARKS.md). A
    spawned process (no TensorFlow inside) keeps the GIL free. A few images
    (``IN_PROCESS_MAX_IMAGES``, unless ``in_process`` says otherwise) are warped in this
    process when their epoch is asked for: the same images, without a process to start.
    """

    def __init__(self, images: np.ndarray, seed: int, epochs: int | None = None,
                 start_epoch: int = 0, ranges: dict | None = None,
                 in_process: bool | None = None):
        self.seed, self.epochs, self.ranges = seed, epochs, ranges
        self._images, self._images_files = images, []
        if in_process is None:
            in_process = len(images) <= IN_PROCESS_MAX_IMAGES
        self._pool = None if in_process else self._start_worker()
        self._pending = {} if in_process else {start_epoch: self._submit(start_epoch)}

    def _start_worker(self):
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        # The images go through a file whose name is the first task, never through the pipe:
        # a process that dies starting (a script without `if __name__ == "__main__":`, run
        # from stdin) left a write of the images, as initializer arguments or as a task,
        # blocked on its pipe, and training hung, or on Python 3.11.2 the interpreter's exit
        # (its executor joins the thread that writes the pipe).
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init_worker,
                                   initargs=(os.getpid(),))
        handle, path = tempfile.mkstemp(prefix="kaggle-digits-augment-", suffix=".npy")
        with os.fdopen(handle, "wb") as images_file:
            np.save(images_file, self._images)
        self._images_files.append(path)
        pool.submit(_receive_images, path)
        return pool

    def _submit(self, epoch: int):
        return self._pool.submit(_augment_in_worker, self.seed, epoch, self.ranges)

    def images_for(self, epoch: int) -> np.ndarray:
        """The augmented images of ``epoch``; starts preparing ``epoch + 1`` right away.

        A worker that died (killed for memory, or by hand) is started again once: an epoch's
        images depend only on ``(seed, epoch)``, so the run goes on as if nothing happened
        (it crashed with a 100-line TensorFlow traceback)."""
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            return augment_epoch(self._images, self.seed, epoch, ranges=self.ranges)
        for attempt in (1, 2):
            future = self._pending.pop(epoch, None) or self._submit(epoch)
            if self.epochs is None or epoch + 1 < self.epochs:
                self._pending[epoch + 1] = self._submit(epoch + 1)
            try:
                return future.result()
            except BrokenProcessPool as exc:
                self.close()
                if attempt == 2:
                    raise RuntimeError(
                        "the augmentation worker process died twice (its error is above). A "
                        "script that trains must run its code under `if __name__ == "
                        "\"__main__\":` from a file: the worker is spawned and imports it"
                    ) from exc
                self._pool, self._pending = self._start_worker(), {}

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for path in self._images_files:  # Left by a worker that died before it loaded them.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._images_files = []
