#!/usr/bin/env python
"""Can this TensorFlow/Keras pair train with MultiWorkerMirroredStrategy? Two local workers say.

  python bench/multiworker.py

Starts two worker processes on loopback, each with its own ``TF_CONFIG`` (the cluster of both and
its own index), as a multi-machine job would have. Each builds the strategy, compiles a small CNN
in its scope and runs ``model.fit`` for one epoch. Prints each worker's outcome; exit 0 only when
both trained. With TensorFlow 2.21 / Keras 3.15 the cluster forms (2 replicas in sync) and then
``fit`` fails with "Attempt to convert a value (PerReplica...)": Keras 3 does not support this
strategy in ``fit`` (keras-team/keras#20585), which is why train.py offers ``--strategy mirrored``
(one machine, several GPUs) only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def run_worker(index: int) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    print(f"worker {index}: {strategy.num_replicas_in_sync} replicas in sync", flush=True)
    rng = np.random.default_rng(index)
    images = rng.random((512, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 512)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    with strategy.scope():
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3),
                                  keras.layers.Flatten(),
                                  keras.layers.Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(dataset, epochs=1, verbose=0)
    print(f"worker {index}: trained, loss {history.history['loss'][0]:.4f}", flush=True)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        run_worker(int(sys.argv[2]))
        return 0
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, __file__, "--worker", str(index)],
                                        env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    ok = True
    for index, worker in enumerate(workers):
        try:
            output, _ = worker.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            worker.kill()
            output = "timed out after 300 s"
        lines = [line for line in output.splitlines() if line.startswith("worker ")]
        errors = [line for line in output.splitlines() if "Error:" in line]
        print("\n".join(lines) or f"worker {index}: no output")
        if worker.returncode != 0:
            ok = False
            print(f"worker {index}: failed (exit {worker.returncode}): "
                  f"{errors[-1][:200] if errors else output.strip().splitlines()[-1][:200]}")
    print("multi-worker training works" if ok else
          "multi-worker training does not work with this TensorFlow/Keras pair")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
