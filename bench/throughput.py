"""Input-pipeline throughput: our batches against a plain ``model.fit`` on in-memory arrays.

Same model (simple_cnn), batch size and rows, in the same process, repeats interleaved so machine
noise hits both alike. With augmentation on, the time the training loop spends inside
``__getitem__`` (fetching and converting a batch, or waiting for the augmentation worker) is the
share of step time spent waiting for input.
"""

from __future__ import annotations

import time

import numpy as np

import kaggle_digits  # noqa: F401  Sets the TensorFlow environment before Keras loads.
from kaggle_digits.data.batches import DigitBatches


class TimedBatches(DigitBatches):
    """DigitBatches that add up the time spent producing batches."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_seconds = 0.0

    def __getitem__(self, index):
        started = time.perf_counter()
        try:
            return super().__getitem__(index)
        finally:
            self.input_seconds += time.perf_counter() - started


def measure_throughput(images: np.ndarray, labels: np.ndarray, batch_size: int = 64,
                       repeats: int = 3, log=print) -> dict:
    """Images per second of one epoch for each input path, median over ``repeats``."""
    import keras

    from kaggle_digits.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model("simple_cnn")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    as_float = images.astype(np.float32)
    model.fit(as_float[:2048], labels[:2048], batch_size=batch_size, epochs=1, verbose=0)
    rates = {"plain fit (float32 arrays)": [], "DigitBatches": [],
             "DigitBatches + augmentation": []}
    waits = []
    def plain_fit():
        started = time.perf_counter()
        model.fit(as_float, labels, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        rates["plain fit (float32 arrays)"].append(len(images) / (time.perf_counter() - started))

    for repeat in range(repeats):
        # Alternate who goes first: the CPU's speed drifts between epochs.
        if repeat % 2 == 0:
            plain_fit()
        for augment, key in ((False, "DigitBatches"), (True, "DigitBatches + augmentation")):
            batches = TimedBatches(images, labels, batch_size, seed=repeat, augment=augment,
                                   epochs=1)
            try:
                if augment:
                    time.sleep(2.0)  # In training the worker prepares an epoch ahead.
                started = time.perf_counter()
                model.fit(batches, epochs=1, verbose=0)
                elapsed = time.perf_counter() - started
            finally:
                batches.close()
            rates[key].append(len(images) / elapsed)
            if augment:
                waits.append(batches.input_seconds / elapsed)
        if repeat % 2 == 1:
            plain_fit()
        log(f"repeat {repeat + 1}/{repeats}: " + ", ".join(
            f"{key} {values[-1]:,.0f} img/s" for key, values in rates.items()))
    result = {key: float(np.median(values)) for key, values in rates.items()}
    result["input wait share (augmented)"] = float(np.median(waits))
    result["repeats"] = {key: [round(v) for v in values] for key, values in rates.items()}
    result["pair ratios"] = [round(ours / plain, 2) for ours, plain in
                             zip(rates["DigitBatches"], rates["plain fit (float32 arrays)"])]
    return result
