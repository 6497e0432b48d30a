#!/usr/bin/env python
"""How close training comes to what this CPU can do: a model's training FLOPs per image times the
images per second a run reached, against the FLOP/s of a plain float32 matmul in TensorFlow.

  python bench/flops.py --run runs/<improved_cnn run>     # images/s from the run's metrics
  python bench/flops.py --arch improved_cnn --images-per-s 2400
  python bench/flops.py --breakdown                       # where a training step's time goes

The forward FLOPs are TensorFlow's own count (tf.profiler on the frozen forward graph of one image);
training is taken as three forward passes (the backward pass costs about two), as is usual.

``--breakdown`` times one training step of a batch (forward, gradients, Adam update) in a
``tf.function``, then each layer alone on its own input shape (forward and both gradients), and
prints each layer's share of the layers' time and the FLOP/s its convolution or matmul reaches.
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


def _median_seconds(step, repeats: int) -> float:
    step()  # Trace and warm up.
    step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _layer_flops(layer, batch: int) -> int:
    """Forward multiply-adds x 2 of a convolution or dense layer for ``batch`` images, else 0."""
    import math

    from keras import layers

    if isinstance(layer, layers.Conv2D):
        out = layer.output.shape
        return 2 * batch * math.prod(out[1:]) * math.prod(layer.kernel_size) * layer.input.shape[-1]
    if isinstance(layer, layers.Dense):
        return 2 * batch * layer.input.shape[-1] * layer.units
    return 0


def step_breakdown(arch: str, batch: int = 128, repeats: int = 30, **options) -> list[dict]:
    """Median seconds of a whole training step and of every layer's share of one."""
    import keras
    import tensorflow as tf

    from kaggle_digits.models import build_model

    model = build_model(arch, **options)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    images = tf.random.uniform((batch, 28, 28, 1), 0, 255)
    labels = tf.random.uniform((batch,), 0, 10, dtype=tf.int64)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rows = [{"layer": "whole training step", "seconds": _median_seconds(train_step, repeats),
             "flops": 3 * sum(_layer_flops(layer, batch) for layer in model.layers)}]
    for layer in model.layers[1:]:
        clone = layer.__class__.from_config(layer.get_config())
        inputs = tf.random.uniform((batch, *layer.input.shape[1:]))
        clone.build(inputs.shape)
        upstream = tf.random.uniform((batch, *layer.output.shape[1:]))

        @tf.function
        def layer_step(clone=clone, inputs=inputs, upstream=upstream):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(clone(inputs, training=True) * upstream)
            return tape.gradient(loss, [inputs, *clone.trainable_variables])

        rows.append({"layer": f"{layer.name} ({layer.__class__.__name__})",
                     "seconds": _median_seconds(layer_step, repeats),
                     "flops": 3 * _layer_flops(layer, batch)})
    return rows


def print_breakdown(rows: list[dict], matmul: float, batch: int) -> None:
    """Each layer's share of the layers' summed time, and by kind of layer.

    Layers timed alone each pay their own dispatch and memory round trips, so their sum exceeds
    the fused step; their shares, not their sum, say where a step's time goes.
    """
    step = rows[0]["seconds"]
    print(f"one training step of {batch} images in a tf.function: {step * 1e3:.1f} ms = "
          f"{batch / step:,.0f} images/s, {rows[0]['flops'] / step / 1e9:.1f} GFLOP/s "
          f"({rows[0]['flops'] / step / matmul:.0%} of the matmul rate)")
    layers_total = sum(row["seconds"] for row in rows[1:])
    print(f"layers timed alone: {layers_total * 1e3:.1f} ms in all "
          f"({layers_total / step:.2f}x the fused step)")
    print("| layer | ms alone (forward + backward) | share | GFLOP/s |")
    print("|---|---|---|---|")
    by_kind: dict[str, float] = {}
    for row in rows[1:]:
        rate = f"{row['flops'] / row['seconds'] / 1e9:.1f}" if row["flops"] else "-"
        print(f"| {row['layer']} | {row['seconds'] * 1e3:.2f} | "
              f"{row['seconds'] / layers_total:.0%} | {rate} |")
        kind = row["layer"].rsplit("(", 1)[1].rstrip(")")
        by_kind[kind] = by_kind.get(kind, 0.0) + row["seconds"]
    print("by kind: " + ", ".join(f"{kind} {seconds / layers_total:.0%}" for kind, seconds in
                                  sorted(by_kind.items(), key=lambda item: -item[1])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="improved_cnn")
    parser.add_argument("--run", help="a finished run: its arch, options and training speed")
    parser.add_argument("--images-per-s", type=float, help="training speed, without --run")
    parser.add_argument("--breakdown", action="store_true",
                        help="time a training step and each layer's share of it")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    options, images_per_s = {}, args.images_per_s
    if args.run:
        from kaggle_digits.runs.rundir import RunDir

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
    if args.breakdown:
        print_breakdown(step_breakdown(args.arch, args.batch_size, **options), matmul,
                        args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
