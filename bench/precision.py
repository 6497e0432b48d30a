#!/usr/bin/env python
"""Training speed by compute precision and batch size: float32 against mixed_bfloat16.

  python bench/precision.py                          # improved_cnn, batches 128/256/512, 3 repeats
  python bench/precision.py --batches 256 --repeats 5 --rows 16384

Each (precision, batch) point runs in its own child process (a Keras dtype policy is process-wide
state, and TensorFlow's CPU speed drifts between processes), with the points interleaved across
repeats so that the machine's noise falls on all of them alike. A child builds the model as
``train.py --precision`` does, compiles it with the training loss, fits one warm-up epoch over
2,048 rows and then one timed epoch over ``--rows`` random pixel rows held in memory (no
augmentation: this is the model's step, not the input pipeline). Prints medians and the ratio of
each bfloat16 point to float32 at the same batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(arch: str, precision: str, batch: int, rows: int) -> float:
    """Images per second of one training epoch (after a warm-up) in this process."""
    sys.path.insert(0, str(ROOT))
    import kaggle_digits  # noqa: F401  (its TensorFlow CPU settings, before TensorFlow loads)
    import keras
    import numpy as np

    from kaggle_digits.losses import training_loss
    from kaggle_digits.models import build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (rows, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    model = build_model(arch, precision)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=training_loss(0.1),
                  metrics=["accuracy"])
    model.fit(images[:2048], labels[:2048], batch_size=batch, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0)
    return rows / (time.perf_counter() - started)


def measure(arch: str, precisions: list[str], batches: list[int], rows: int, repeats: int,
            log=print) -> dict[tuple[str, int], list[float]]:
    rates: dict[tuple[str, int], list[float]] = {(p, b): [] for p in precisions for b in batches}
    for repeat in range(repeats):
        points = list(rates)
        if repeat % 2:
            points.reverse()  # Alternate who goes first.
        for precision, batch in points:
            result = subprocess.run(
                [sys.executable, __file__, "--child", arch, precision, str(batch), str(rows)],
                capture_output=True, text=True, check=True, cwd=ROOT)
            rate = json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"]
            rates[(precision, batch)].append(rate)
            log(f"repeat {repeat + 1}/{repeats}: {precision} batch {batch}: {rate:,.0f} img/s")
    return rates


def table(rates: dict[tuple[str, int], list[float]]) -> str:
    lines = ["| precision | batch | images/s per repeat | median | vs float32, same batch |",
             "|---|---|---|---|---|"]
    for (precision, batch), values in rates.items():
        median = statistics.median(values)
        reference = rates.get(("float32", batch))
        ratio = f"{median / statistics.median(reference):.2f}x" if reference else "-"
        lines.append(f"| {precision} | {batch} | {', '.join(f'{v:,.0f}' for v in values)} | "
                     f"{median:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="improved_cnn")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--batches", default="128,256,512")
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("ARCH", "PRECISION", "BATCH", "ROWS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        arch, precision, batch, rows = args.child
        print(json.dumps({"images_per_s": child(arch, precision, int(batch), int(rows))}))
        return 0
    rates = measure(args.arch, args.precisions.split(","),
                    [int(b) for b in args.batches.split(",")], args.rows, args.repeats)
    print(f"\n{args.arch}, one epoch of {args.rows:,} in-memory rows, median of {args.repeats}:")
    print(table(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
