"""--strategy mirrored on a CPU split into two logical devices (a stand-in for two GPUs)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

TWO_DEVICE_RUN = """
import sys
import kaggle_digits
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.run import train
metrics, run_dir = train(TrainConfig(arch="simple_cnn", data_dir=sys.argv[1], epochs=2,
                                     batch_size=32, strategy="mirrored",
                                     output_dir=sys.argv[2], submissions_dir=sys.argv[3]))
print("RUN_DIR", run_dir)
"""

pytestmark = pytest.mark.slow  # A MirroredStrategy fit.


def test_mirrored_strategy_trains_across_two_devices(tmp_path, tiny_data_dir):
    result = subprocess.run([sys.executable, "-c", TWO_DEVICE_RUN, str(tiny_data_dir),
                             str(tmp_path / "runs"), str(tmp_path / "subs")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy over 2 device(s)" in result.stdout
    run_dir = Path(result.stdout.split("RUN_DIR ")[1].strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    right = np.load(run_dir / "val_probs.npy").argmax(axis=1) == np.load(run_dir /
                                                                          "val_labels.npy")
    assert metrics["epochs_run"] == 2 and metrics["val_accuracy"] == pytest.approx(right.mean())
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "mirrored"
