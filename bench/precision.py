#!/usr/bin/env python
"""Training speed by compute precision and batch size: float32 against mixed_bfloat16.

  python bench/precision.py                          # improved_cnn, batches 128/256/512, 3 repeats
  python bench/precision.py --batches 256 --repeats 5 --rows 16384
  python bench/precision.py --precisions float32 --batches 128 --awake both --repeats 6
  python bench/precision.py --stems conv5,space_to_depth --batches 128,256 --repeats 5
  python bench/precision.py --precisions float32 --variants stem_norm=batch,stem_norm=none

Each (precision, batch) point runs in its own child process (a Keras dtype policy is process-wide
state, and TensorFlow's CPU speed drifts between processes), with the points interleaved across
repeats so that the machine's noise falls on all of them alike. A child builds the model as
``train.py --precision`` does, compiles it with the training loss, fits one warm-up epoch over
2,048 rows and then one timed epoch over ``--rows`` random pixel rows held in memory (no
augmentation: this is the model's step, not the input pipeline). Prints medians and the ratio of
each bfloat16 point to float32 at the same batch size.

``--awake on`` runs each child beside one busy loop per core at SCHED_IDLE priority (the lowest:
any other thread preempts it), so that no core of the machine ever goes idle; ``both`` interleaves
children with and without. A test of whether TensorFlow's threads lose time waking idle cores of a
virtual machine: on the 2-vCPU host of BENCHMARKS.md they did not (medians 858 vs 803 images/s over
6 interleaved pairs, Mann-Whitney p = 1), though two blocks of children run minutes apart had
suggested 1.42x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(arch: str, precision: str, batch: int, rows: int, options: dict) -> float:
    """Images per second of one training epoch (after a warm-up) in this process."""
    sys.path.insert(0, str(ROOT))
    import keras
    import numpy as np

    import kaggle_digits  # noqa: F401  (its TensorFlow CPU settings, before TensorFlow loads)
    from kaggle_digits.models import build_model
    from kaggle_digits.models.losses import training_loss

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (rows, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, rows)
    model = build_model(arch, precision, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=training_loss(0.1),
                  metrics=["accuracy"])
    model.fit(images[:2048], labels[:2048], batch_size=batch, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0)
    return rows / (time.perf_counter() - started)


SPIN_AT_IDLE_PRIORITY = (
    "import os\n"
    "os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:  # Gone with the bench, even if it is killed.\n"
    "    for _ in range(1_000_000):\n"
    "        pass\n"
)


@contextlib.contextmanager
def cores_kept_awake(awake: bool):
    """One busy loop per core at SCHED_IDLE priority while the block runs (when ``awake``)."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN_AT_IDLE_PRIORITY])
                for _ in range(os.cpu_count() or 1)] if awake else []
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


# precision, batch, cores kept awake, model variant ("" = the architecture's defaults)
Point = tuple[str, int, bool, str]


def variant_options(variant: str) -> dict:
    """Builder options of a variant written ``key=value+key=value`` (``stem=space_to_depth``)."""
    from kaggle_digits.training.config import parse_value

    options = {}
    for part in filter(None, variant.split("+")):
        key, equals, value = part.partition("=")
        if not (equals and key and value):
            raise ValueError(f"a variant is key=value[+key=value...]. Received: {variant!r}")
        options[key] = parse_value(value)
    return options


def measure(arch: str, precisions: list[str], batches: list[int], rows: int, repeats: int,
            awake_modes: tuple[bool, ...] = (False,), variants: tuple[str, ...] = ("",),
            log=print) -> dict[Point, list[float]]:
    rates: dict[Point, list[float]] = {
        (p, b, a, v): [] for v in variants for p in precisions for b in batches
        for a in awake_modes}
    for repeat in range(repeats):
        points = list(rates)
        if repeat % 2:
            points.reverse()  # Alternate who goes first.
        for precision, batch, awake, variant in points:
            with cores_kept_awake(awake):
                result = subprocess.run(
                    [sys.executable, __file__, "--child", arch, precision, str(batch), str(rows),
                     json.dumps(variant_options(variant))],
                    capture_output=True, text=True, check=True, cwd=ROOT)
            rate = json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"]
            rates[(precision, batch, awake, variant)].append(rate)
            log(f"repeat {repeat + 1}/{repeats}: {variant + ' ' if variant else ''}{precision} "
                f"batch {batch}{', cores kept awake' if awake else ''}: {rate:,.0f} img/s")
    return rates


def table(rates: dict[Point, list[float]]) -> str:
    """Medians, and each point's ratio to the first variant in float32 at the same batch."""
    reference_variant = next(iter(rates))[3]
    lines = ["| variant | precision | batch | cores kept awake | images/s per repeat | median | "
             "vs float32, first variant, same batch |", "|---|---|---|---|---|---|---|"]
    for (precision, batch, awake, variant), values in rates.items():
        median = statistics.median(values)
        reference = rates.get(("float32", batch, awake, reference_variant))
        ratio = f"{median / statistics.median(reference):.2f}x" if reference else "-"
        lines.append(f"| {variant or 'default'} | {precision} | {batch} | "
                     f"{'yes' if awake else 'no'} | {', '.join(f'{v:,.0f}' for v in values)} | "
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
    parser.add_argument("--awake", choices=("off", "on", "both"), default="off",
                        help="run the children beside idle-priority busy loops that keep every "
                             "core awake (on), or interleave both ways (both)")
    parser.add_argument("--variants", help="builder options to compare, comma-separated "
                        "variants of key=value[+key=value], e.g. stem=conv5,stem_norm=none "
                        "(default: the architecture's own)")
    parser.add_argument("--stems", help="improved_cnn stems to compare, e.g. "
                        "conv5,space_to_depth: short for --variants stem=conv5,"
                        "stem=space_to_depth")
    parser.add_argument("--child", nargs=5,
                        metavar=("ARCH", "PRECISION", "BATCH", "ROWS", "OPTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        arch, precision, batch, rows, options = args.child
        print(json.dumps({"images_per_s": child(arch, precision, int(batch), int(rows),
                                                json.loads(options))}))
        return 0
    if args.stems and args.variants:
        parser.error("give --stems or --variants, not both")
    variants = (tuple(f"stem={stem}" for stem in args.stems.split(",")) if args.stems
                else tuple(args.variants.split(",")) if args.variants else ("",))
    try:
        for variant in variants:
            variant_options(variant)
    except ValueError as exc:
        parser.error(str(exc))
    rates = measure(args.arch, args.precisions.split(","),
                    [int(b) for b in args.batches.split(",")], args.rows, args.repeats,
                    awake_modes={"off": (False,), "on": (True,), "both": (False, True)}[args.awake],
                    variants=variants)
    print(f"\n{args.arch}, one epoch of {args.rows:,} in-memory rows, median of {args.repeats}:")
    print(table(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
