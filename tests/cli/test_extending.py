"""docs/extending.md's architecture recipe, followed: a toy architecture registered from a module
of its own trains through train.py, learns, and is listed."""

from __future__ import annotations

import importlib.util
import json

from helpers import run_cli

TOY_MODULE = '''
"""A toy architecture, registered as docs/extending.md says."""

from keras import layers

from kaggle_digits.models.common import pixel_input, probs_head
from kaggle_digits.models.registry import register_model


@register_model("toy", "one dense layer of 32 units (docs/extending.md's example)",
                epochs=8, batch_size=32, learning_rate=3e-3, lr_schedule="constant",
                augment=False)
def toy(units: int = 32):
    """The smallest net that learns the digits: flattened pixels, one hidden layer."""
    inputs, x = pixel_input()
    x = layers.Flatten()(x)
    x = layers.Dense(units, activation="relu")(x)
    import keras

    return keras.Model(inputs, probs_head(x), name="toy")
'''


def test_a_toy_architecture_from_its_own_module_trains_through_the_cli(tmp_path, tiny_data_dir,
                                                                       monkeypatch):
    from kaggle_digits import Registry
    from kaggle_digits.models import registry

    architectures = Registry("architecture", "arch")
    architectures.update(registry._REGISTRY)
    monkeypatch.setattr(registry, "_REGISTRY", architectures)  # The toy is gone afterwards.
    (tmp_path / "toy_arch.py").write_text(TOY_MODULE)
    spec = importlib.util.spec_from_file_location("toy_arch", tmp_path / "toy_arch.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))

    listing = run_cli("train.py", "--list-archs")
    assert "toy" in listing.stdout and "docs/extending.md's example" in listing.stdout
    result = run_cli("train.py", "--arch", "toy", "--data", str(tiny_data_dir), "--run-name",
                     "toy-run", "--output-dir", str(tmp_path / "runs"), "--submissions-dir",
                     str(tmp_path / "subs"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "runs" / "toy-run" / "metrics.json").read_text())
    assert metrics["arch"] == "toy" and metrics["epochs_run"] == 8  # Its registered default.
    assert metrics["val_accuracy"] > 0.3  # It learned: chance is 0.1.
    unknown = run_cli("train.py", "--arch", "toy2", "--data", str(tiny_data_dir))
    assert unknown.returncode == 2 and "unknown architecture" in unknown.stderr
