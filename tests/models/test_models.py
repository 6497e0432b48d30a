"""Every registered architecture: shapes, probabilities, a tiny fit, and a safe-mode round trip."""

import keras
import numpy as np
import pytest

from kaggle_digits.models import build_model, get_model_spec, list_models, register_model
from kaggle_digits.models.transfer import WeightsUnavailableError

ARCHS = list_models()
TRANSFER_ARCHS = ["efficientnetb0", "resnet50", "vgg16"]


def smoke_options(arch: str) -> dict:
    """Tests never download ImageNet weights: transfer models start from random weights."""
    return {"weights": "none"} if arch in TRANSFER_ARCHS else {}


def test_registry_lists_every_seed_report_architecture_and_refuses_bad_names():
    # At least these (an architecture added by following docs/extending.md joins them).
    assert set(ARCHS) >= {"simple_cnn", "improved_cnn", "strided_cnn", "mlp", "lstm", "rnn",
                          "transformer", *TRANSFER_ARCHS}
    with pytest.raises(ValueError, match="choose one of: .*improved_cnn"):
        build_model("no_such_net")
    with pytest.raises(ValueError, match="already registered"):
        register_model("simple_cnn", "again")(lambda: None)
    with pytest.raises(ValueError, match="mlp does not take option.*filters"):
        build_model("mlp", filters="16,32,32")


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_pass_gives_probabilities(arch):
    model = build_model(arch, **smoke_options(arch))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    probs = keras.ops.convert_to_numpy(model(pixels, training=False))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    spec = get_model_spec(arch)
    assert spec.description and spec.builder.__doc__


def assert_reloads_in_safe_mode(model, tmp_path, seed: int = 0) -> None:
    """Saved as a .keras file, the model loads in Keras safe mode and predicts as before."""
    pixels = np.random.default_rng(seed).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(pixels, training=False)),
                               keras.ops.convert_to_numpy(model(pixels, training=False)),
                               rtol=1e-5, atol=1e-6)

@pytest.mark.slow
@pytest.mark.parametrize("arch", ["efficientnetb0", "resnet50"])
def test_transfer_models_not_trained_in_the_suite_reload_in_safe_mode(arch, tmp_path):
    """The other architectures train, save and reload in test_training."""
    assert_reloads_in_safe_mode(build_model(arch, weights="none"), tmp_path)


@pytest.mark.parametrize("arch", ["improved_cnn", "transformer"])
def test_mixed_bfloat16_computes_in_bfloat16_with_a_float32_softmax(arch, tmp_path):
    model = build_model(arch, "mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # Restored for whatever is built next.
    compute = {layer.dtype_policy.compute_dtype for layer in model.layers[2:-1]}
    assert compute == {"bfloat16"}
    assert model.get_layer("probs").dtype_policy.name == "float32"
    assert all(weight.dtype == "float32" for weight in model.weights)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    probs = model(pixels, training=False)
    assert keras.backend.standardize_dtype(probs.dtype) == "float32"
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[3].dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(pixels, training=False)),
                               keras.ops.convert_to_numpy(probs), rtol=1e-6)
    with pytest.raises(ValueError, match="float17"):
        build_model(arch, "float17")
    assert keras.config.dtype_policy().name == "float32"


def test_simple_cnn_matches_the_seed_report_layout():
    model = build_model("simple_cnn")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 64]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [64, 10]


def test_improved_cnn_normalises_every_convolution_and_uses_dropout():
    model = build_model("improved_cnn")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) >= len(convs) == 4
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert get_model_spec("improved_cnn").train_defaults["augment"] is True


def test_filters_option_is_validated():
    assert [c.filters for c in build_model("simple_cnn", filters="16-32-32").layers
            if isinstance(c, keras.layers.Conv2D)] == [16, 32, 32]
    with pytest.raises(ValueError, match="expected 3 positive filter counts"):
        build_model("simple_cnn", filters="16,32")
    with pytest.raises(ValueError, match="kernel_size=3 with stride=2 and valid padding shrinks"):
        build_model("simple_cnn", stride=2)
    assert build_model("simple_cnn", stride=2, padding="same").output_shape == (None, 10)
    assert build_model("simple_cnn", kernel_size=5, padding="same").output_shape == (None, 10)


def test_transfer_model_is_frozen_unless_fine_tuned():
    frozen = build_model("efficientnetb0", weights="none")
    base = frozen.get_layer("efficientnetb0")
    assert not base.trainable and not base.trainable_weights
    tuned = build_model("efficientnetb0", weights="none", fine_tune=5).get_layer("efficientnetb0")
    trainable = [layer for layer in tuned.layers if layer.trainable_weights]
    assert 0 < len(trainable) <= 5
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)


def test_offline_imagenet_download_fails_with_a_clear_message(monkeypatch, tmp_path):
    from keras.src.applications import efficientnet

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(efficientnet.file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_model("efficientnetb0")
    message = str(info.value)
    assert str(tmp_path / "keras-home" / "models") in message
    assert "--weights none" in message and "--weights PATH" in message


def test_transfer_weights_load_from_a_file(tmp_path):
    base = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                             input_shape=(32, 32, 3))
    path = tmp_path / "b0.weights.h5"
    base.save_weights(path)
    loaded = build_model("efficientnetb0", weights=str(path)).get_layer("efficientnetb0")
    np.testing.assert_array_equal(loaded.get_weights()[0], base.get_weights()[0])
    with pytest.raises(ValueError, match="no such file"):
        build_model("vgg16", weights=str(tmp_path / "missing.h5"))


def test_space_to_depth_stem_stacks_2x2_pixel_blocks_and_reloads_in_safe_mode(tmp_path):
    """The stem option keeps the rest of improved_cnn and its 14x14 stage; the stacked channels
    are TensorFlow's own space_to_depth, so the net sees every pixel once."""
    import tensorflow as tf

    from kaggle_digits.models.cnn import space_to_depth

    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    inputs = keras.Input((28, 28, 1))
    stacker = keras.Model(inputs, space_to_depth(inputs, 2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stacker(pixels)),
                                  tf.nn.space_to_depth(pixels, 2).numpy())

    model = build_model("improved_cnn", stem="space_to_depth")
    stem = model.get_layer("stem_conv")
    assert stem.input.shape[1:] == (14, 14, 4) and stem.kernel_size == (3, 3)
    assert "pool1" not in [layer.name for layer in model.layers]
    assert model.get_layer("pool2").output.shape[1:] == (7, 7, 32)
    assert_reloads_in_safe_mode(model, tmp_path)
    with pytest.raises(ValueError, match="stem must be one of conv5, space_to_depth"):
        build_model("improved_cnn", stem="conv7")


def test_stem_norm_none_drops_only_the_stems_batch_norm(tmp_path):
    """The speed option leaves every other batch norm; the stem convolution takes the bias the
    batch norm supplied, and the model saves and loads as any other."""
    with_norm = build_model("improved_cnn")
    without = build_model("improved_cnn", stem_norm="none")
    names = [layer.name for layer in without.layers]
    assert "stem_bn" not in names and "block2a_bn" in names and "dense_bn" in names
    assert without.get_layer("stem_conv").use_bias
    assert not with_norm.get_layer("stem_conv").use_bias
    assert with_norm.count_params() - without.count_params() == 4 * 16 - 16  # BN's 4 x 16, bias 16
    assert_reloads_in_safe_mode(without, tmp_path, seed=1)
    with pytest.raises(ValueError, match="stem_norm must be one of batch, none"):
        build_model("improved_cnn", stem_norm="layer")


def test_list_archs_reads_the_registrations_without_loading_tensorflow():
    """The listing is read from the source (seconds of TensorFlow saved); it must say what the
    registry holds, every architecture and default."""
    import subprocess
    import sys

    from helpers import ROOT

    from kaggle_digits.cli.catalog import static_catalog

    assert static_catalog() == {name: (get_model_spec(name).description,
                                       get_model_spec(name).train_defaults)
                                for name in list_models()}
    code = ("import sys\nfrom kaggle_digits.cli import train\ntrain.main(['--list-archs'])\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False"
    assert all(f"{name} " in result.stdout for name in list_models())
