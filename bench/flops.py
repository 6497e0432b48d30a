#!/usr/bin/env python
"""How close training comes to what this CPU can do: a model's training FLOPs per image times the
images per second a run reached, against the FLOP/s of a plain float32 matmul in TensorFlow.

  python bench/flops.py --run runs/<improved_cnn run>     # images/s from the run's metrics
  python bench/flops.py --arch improved_cnn --images-per-s 2400

The forward FLOPs are TensorFlow's own count (tf.profiler on the frozen forward graph of one image);
training is taken as three forward passes (the backward pass costs about two), as is usual.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import kaggle_digits  # noqa: F401  (its TensorFlow CPU settings, before TensorFlow loads)


def forward_flops(arch: str, **options) -> int:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from kaggle_digits.models import build_model

    model = build_model(arch, **options)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, 28, 28, 1], tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def matmul_flops_per_s(size: int = 2048, repeats: int = 7) -> float:
    """Median FLOP/s of ``size`` x ``size`` float32 matmuls with TensorFlow's default threads."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.matmul(a, b).numpy()  # Warm-up.
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        rates.append(2 * size**3 / (time.perf_counter() - started))
    return statistics.median(rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="improved_cnn")
    parser.add_argument("--run", help="a finished run: its arch, options and training speed")
    parser.add_argument("--images-per-s", type=float, help="training speed, without --run")
    args = parser.parse_args(argv)
    options, images_per_s = {}, args.images_per_s
    if args.run:
        from kaggle_digits.rundir import RunDir

        run = RunDir(args.run)
        config, metrics = run.read_config(), run.read_metrics()
        args.arch, options = config.arch, config.model_options
        images_per_s = metrics["train_rows"] / metrics["time_per_epoch_s"]
    forward = forward_flops(args.arch, **options)
    matmul = matmul_flops_per_s()
    print(f"{args.arch}: {forward / 1e6:.1f} MFLOP forward per image, "
          f"{3 * forward / 1e6:.1f} MFLOP to train on one image")
    print(f"plain float32 matmul (2048x2048, TensorFlow): {matmul / 1e9:.1f} GFLOP/s")
    if images_per_s:
        used = 3 * forward * images_per_s
        print(f"training at {images_per_s:,.0f} images/s = {used / 1e9:.1f} GFLOP/s, "
              f"{used / matmul:.0%} of the matmul rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
