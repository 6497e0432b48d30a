"""End-to-end training on tiny real data (cut from the bundled sample), as users run it."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import RUN_FILES, make_tiny_data_dir, run_cli, tiny_config, write_csv

from kaggle_digits.data.splits import stratified_split
from kaggle_digits.models import builder_defaults, list_models
from kaggle_digits.runs.io import load_npy
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.submission.files import check_submission_file
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.run import train
from kaggle_digits.training.runtime import cpu_has_native_bfloat16


@pytest.fixture(scope="module")
def improved_run(tmp_path_factory):
    """One tiny improved_cnn run shared by the assertions below (training is the slow part)."""
    tmp_path = tmp_path_factory.mktemp("improved")
    data_dir = make_tiny_data_dir(tmp_path)
    messages = []
    metrics, run_dir = train(tiny_config(tmp_path, data_dir, arch="improved_cnn",
                                         tensorboard=True), log=messages.append)
    return metrics, run_dir, data_dir, messages, tmp_path


def test_run_directory_holds_every_output(improved_run):
    metrics, run_dir, _, _, tmp_path = improved_run
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert not (run_dir / "FAILED").exists() and not (run_dir / "state.json").exists()
    assert [p.name for p in run_dir.glob("*.keras")] == ["model.keras"]
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    assert (tmp_path / "subs" / f"{run_dir.name}.csv").read_text() == \
        (run_dir / "submission.csv").read_text()


def test_metrics_describe_the_run(improved_run):
    metrics, run_dir, data_dir, _, _ = improved_run
    val_probs = load_npy(run_dir / "val_probs.npy")
    right = val_probs.argmax(axis=1) == load_npy(run_dir / "val_labels.npy")
    assert metrics["val_accuracy"] == pytest.approx(right.mean())  # What its predictions score.
    assert metrics["val_loss"] > 0
    assert metrics["epochs_run"] == 2 and metrics["time_per_epoch_s"] > 0
    assert metrics["train_rows"] == 320 and metrics["val_rows"] == 80 and metrics["test_rows"] == 60
    assert metrics["parameters"] > 0
    assert set(metrics["data_fingerprint"]) == {"train.csv", "test.csv"}
    assert metrics["is_sample"] is False and metrics["data_dir"] == str(data_dir)
    assert metrics["versions"]["keras"] == keras.__version__


def test_probabilities_labels_and_split_are_consistent(improved_run):
    metrics, run_dir, data_dir, _, _ = improved_run
    val_probs, test_probs = (load_npy(run_dir / "val_probs.npy"),
                             load_npy(run_dir / "test_probs.npy"))
    val_labels, val_indices = (load_npy(run_dir / "val_labels.npy"),
                               load_npy(run_dir / "val_indices.npy"))
    assert val_probs.shape == (80, 10) and test_probs.shape == (60, 10)
    np.testing.assert_allclose(test_probs.sum(axis=1), 1.0, rtol=1e-4)
    train_labels = pd.read_csv(data_dir / "train.csv", usecols=["label"])["label"].to_numpy()
    assert np.array_equal(val_indices, stratified_split(train_labels, 0.2, seed=42)[1])
    assert np.array_equal(val_labels, train_labels[val_indices])
    assert metrics["val_accuracy"] == pytest.approx(np.mean(val_probs.argmax(1) == val_labels))
    submission = pd.read_csv(run_dir / "submission.csv")
    assert submission["Label"].tolist() == test_probs.argmax(1).tolist()
    assert check_submission_file(run_dir / "submission.csv", expected_rows=60) == []


def test_saved_model_loads_in_safe_mode_and_reproduces_test_probs(improved_run):
    _, run_dir, data_dir, _, _ = improved_run
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    pixels = pd.read_csv(data_dir / "test.csv").to_numpy("float32").reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(model.predict(pixels, verbose=0),
                               load_npy(run_dir / "test_probs.npy"), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_tensorboard_logs_hold_the_epoch_scalars(improved_run, tmp_path, tiny_data_dir):
    _, run_dir, _, _, _ = improved_run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [train_logs] = [p for p in (run_dir / "tensorboard").iterdir() if p.name == "train"]
    events = EventAccumulator(str(train_logs), size_guidance={"tensors": 0}).Reload()
    tags = events.Tags()["tensors"]
    assert "epoch_loss" in tags and "epoch_accuracy" in tags
    assert len(events.Tensors("epoch_loss")) == 2
    _, plain_run = train(tiny_config(tmp_path, tiny_data_dir, arch="mlp", epochs=1),
                         log=lambda _: None)
    assert not (plain_run / "tensorboard").exists()  # Off by default: it costs training time.


def test_learning_curves_picture_is_a_png(improved_run):
    _, run_dir, _, _, _ = improved_run
    import matplotlib.image

    picture = matplotlib.image.imread(run_dir / "learning_curves.png")
    # Accuracy, loss and (when logged) the learning rate, 5 x 4 inches each at 100 dpi.
    panels = 2 + ("learning_rate" in (run_dir / "history.csv").read_text().splitlines()[0])
    assert picture.shape[:2] == (400, 500 * panels)
    assert picture[..., :3].std() > 0.05  # Curves drawn, not a blank canvas.


def test_history_and_config_allow_a_repeat(improved_run):
    _, run_dir, _, messages, _ = improved_run
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 2 and {"accuracy", "val_accuracy", "learning_rate"} <= set(history)
    config = RunDir(run_dir).read_config()
    assert config.arch == "improved_cnn" and config.augment is True and config.epochs == 2
    assert config.lr_schedule == "cosine" and config.run_name == run_dir.name
    assert any("class counts" in m for m in messages)
    assert any(m.startswith("validation accuracy") for m in messages)


# The transfer models share one wrapper (transfer.build_transfer_model) and differ in the
# Keras application inside it: vgg16 trains here; efficientnetb0 and resnet50, whose fit was
# two minutes of graph tracing, are built, called and reloaded in safe mode in test_models.
# improved_cnn is the improved_run above (submission checked, model reloaded in safe mode).
TRAINED_ARCHS = [arch for arch in list_models()
                 if arch not in ("efficientnetb0", "resnet50", "improved_cnn")]


@pytest.mark.slow
@pytest.mark.parametrize("arch", TRAINED_ARCHS)
def test_every_architecture_trains_to_a_valid_submission(arch, tmp_path, tiny_data_dir):
    options = {"weights": "none"} if arch == "vgg16" else {}
    metrics, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch=arch, epochs=1,
                                         augment=False, model_options=options),
                             log=lambda _: None)
    assert check_submission_file(run_dir / "submission.csv", expected_rows=60) == []
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    pixels = pd.read_csv(tiny_data_dir / "test.csv").to_numpy("float32").reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(model.predict(pixels, verbose=0),
                               load_npy(run_dir / "test_probs.npy"), rtol=1e-4, atol=1e-5)
    assert np.isfinite(metrics["val_loss"])


def test_the_stem_flags_reach_the_saved_config_and_model(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "improved_cnn", "--stem", "space_to_depth",
                     "--stem-norm", "none", "--data", str(tiny_data_dir), "--epochs", "1",
                     "--output-dir", str(tmp_path / "runs"), "--submissions-dir",
                     str(tmp_path / "subs"))
    assert result.returncode == 0, result.stderr
    [run_dir] = list((tmp_path / "runs").iterdir())
    options = RunDir(run_dir).read_config().model_options
    assert options["stem"] == "space_to_depth" and options["stem_norm"] == "none"
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    assert model.get_layer("stem_conv").input.shape[1:] == (14, 14, 4)
    assert "stem_bn" not in [layer.name for layer in model.layers]
    assert run_cli("train.py", "--stem", "conv7").returncode == 2
    assert run_cli("train.py", "--stem-norm", "layer").returncode == 2


def test_cnn_hyperparameters_reach_the_model_and_the_saved_config(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "simple_cnn", "--data", str(tiny_data_dir),
                     "--epochs", "1", "--filters", "8,16,16", "--kernel-size", "2",
                     "--stride", "2", "--activation", "sigmoid", "--dropout", "0.1",
                     "--optimizer", "sgd", "--lr", "0.05", "--batch-size", "16",
                     "--label-smoothing", "0.1", "--ema", "0.9", "--augment", "--rotate", "15",
                     "--zoom",
                     "0.15", "--shift", "0.05", "--shear", "0",
                     "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"))
    assert result.returncode == 0, result.stderr
    assert "(rotate 15 deg, shift 0.05, zoom 0.15, shear 0 deg)" in result.stdout
    [run_dir] = list((tmp_path / "runs").iterdir())
    config = RunDir(run_dir).read_config()
    assert config.augment_ranges == {"rotate_deg": 15.0, "shift_fraction": 0.05,
                                     "zoom_fraction": 0.15, "shear_deg": 0.0, "crop_size": 0,
                                     "grid_distort": 0.0, "grid_steps": 4,
                                     "elastic_alpha": 0.0, "elastic_sigma": 4.0}
    assert config.model_options == {**builder_defaults("simple_cnn"), "filters": "8,16,16",
                                    "kernel_size": 2, "stride": 2, "activation": "sigmoid",
                                    "dropout_rate": 0.1}
    assert (config.optimizer, config.learning_rate, config.batch_size) == ("sgd", 0.05, 16)
    assert config.label_smoothing == 0.1 and config.ema_momentum == 0.9
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True)
    assert model.loss.label_smoothing == 0.1  # The smoothed loss survives saving and loading.
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == 0.9
    conv1 = model.get_layer("conv1")
    assert (conv1.filters, conv1.kernel_size, conv1.strides) == (8, (2, 2), (2, 2))
    assert conv1.activation.__name__ == "sigmoid"


def test_options_an_architecture_does_not_take_are_refused(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "mlp", "--filters", "8,16,16", "--data",
                     str(tiny_data_dir), "--output-dir", str(tmp_path / "runs"))
    assert result.returncode == 2 and "mlp does not take option(s) filters" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_fine_tuning_lowers_the_default_learning_rate():
    config = TrainConfig(arch="vgg16", model_options={"fine_tune": 4}).resolved()
    assert config.learning_rate == 1e-4
    assert TrainConfig(arch="vgg16").resolved().learning_rate == 1e-3


def test_simple_cnn_without_augmentation(tmp_path, tiny_data_dir, monkeypatch):
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traces = []
    traced_step = TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step",
                        lambda model, data: traces.append(1) or traced_step(model, data))
    metrics, run_dir = train(tiny_config(tmp_path, tiny_data_dir, arch="simple_cnn", epochs=1,
                                         augment=False), log=lambda _: None)
    assert metrics["arch"] == "simple_cnn" and RunDir(run_dir).read_config().augment is False
    assert RunDir(run_dir).read_config().lr_schedule == "plateau"
    # The optimizer's and metrics' variables exist before fit: one trace of the step, not two.
    assert len(traces) == 1


def test_bad_data_fails_before_a_run_directory_exists(tmp_path, tiny_data_dir):
    frame = pd.read_csv(tiny_data_dir / "train.csv")
    frame.loc[5, "pixel10"] = 300
    write_csv(tiny_data_dir / "train.csv", frame)
    from kaggle_digits.data.load import DataError

    with pytest.raises(DataError, match="line 7, column 'pixel10'"):
        train(tiny_config(tmp_path, tiny_data_dir), log=lambda _: None)
    assert not (tmp_path / "runs").exists()


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="val_split"):
        TrainConfig(arch="simple_cnn", val_split=1.5).resolved()
    with pytest.raises(ValueError, match="unknown architecture"):
        TrainConfig(arch="nope").resolved()


@pytest.mark.slow
def test_cli_lists_architectures_and_reports_bad_data_in_one_line(tmp_path, tiny_data_dir):
    listing = run_cli("train.py", "--list-archs")
    assert listing.returncode == 0 and "improved_cnn" in listing.stdout
    assert "simple_cnn" in listing.stdout
    assert ("epochs 30, batch_size 128, learning_rate 0.003, lr_schedule cosine, augment True, "
            "label_smoothing 0.1") in listing.stdout  # improved_cnn's training defaults
    (tiny_data_dir / "test.csv").write_text("")
    result = run_cli("train.py", "--data", str(tiny_data_dir), "--output-dir",
                     str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "test.csv: file is empty" in result.stderr


@pytest.mark.slow
def test_cli_trains_on_the_sample_with_a_notice_and_learns(tmp_path, tiny_data_dir):
    result = run_cli("train.py", "--arch", "simple_cnn", "--epochs", "2", "--no-augment",
                     "--output-dir", str(tmp_path / "runs"),
                     "--submissions-dir", str(tmp_path / "subs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "NOTICE" in result.stdout and "bundled sample" in result.stdout
    assert "validation accuracy:" in result.stdout and "run directory:" in result.stdout
    [run_dir] = list((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["is_sample"] is True and metrics["val_rows"] == 1000
    # It learned: chance is 10% and the commonest digit is ~11% of the rows; two epochs on the
    # sample's 4,000 training rows measured 92.8%.
    labels = load_npy(run_dir / "val_labels.npy")
    predicted = load_npy(run_dir / "val_probs.npy").argmax(axis=1)
    assert np.bincount(labels).max() / len(labels) < 0.15
    assert metrics["val_accuracy"] == np.mean(predicted == labels) >= 0.85
    assert len(np.unique(predicted)) == 10
    # The saved config repeats the run, here in bfloat16 compute on 400 rows (emulated bfloat16
    # is ~8x slower), which learns too: 66-71% after 3 epochs, measured on two seeds.
    repeat = run_cli("train.py", "--config", str(run_dir / "config.json"), "--precision",
                     "mixed_bfloat16", "--epochs", "3", "--batch-size", "32",
                     "--data", str(tiny_data_dir), cwd=tmp_path)
    assert repeat.returncode == 0, repeat.stderr
    emulated = cpu_has_native_bfloat16() is False  # Then told that float32 is faster.
    assert ("no bfloat16 instructions" in repeat.stdout) == emulated
    [bf16_dir] = set((tmp_path / "runs").iterdir()) - {run_dir}
    bf16 = RunDir(bf16_dir)
    assert bf16.read_config().precision == "mixed_bfloat16"
    assert bf16.read_metrics()["val_accuracy"] >= 0.4  # Chance: 0.1.
    model = keras.models.load_model(bf16_dir / "model.keras", safe_mode=True)
    assert model.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"
