"""Every registered architecture: shapes, probabilities, a tiny fit, and a safe-mode round trip."""

import keras
import numpy as np
import pytest

from kaggle_digits.models import build_model, get_model_spec, list_models, register_model

ARCHS = list_models()


def test_registry_lists_the_cnns_and_refuses_unknown_or_duplicate_names():
    assert {"simple_cnn", "improved_cnn"} <= set(ARCHS)
    with pytest.raises(ValueError, match="choose one of: .*improved_cnn"):
        build_model("no_such_net")
    with pytest.raises(ValueError, match="already registered"):
        register_model("simple_cnn", "again")(lambda: None)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_pass_gives_probabilities(arch):
    model = build_model(arch)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1)).astype("float32")
    probs = keras.ops.convert_to_numpy(model(pixels, training=False))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    spec = get_model_spec(arch)
    assert spec.description and spec.builder.__doc__


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_fit_and_safe_mode_round_trip(arch, tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (32, 28, 28, 1)).astype("float32")
    labels = np.arange(32) % 10
    model = build_model(arch)
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(pixels, labels, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0),
                               rtol=1e-5, atol=1e-6)


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
