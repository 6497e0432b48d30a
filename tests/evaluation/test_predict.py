import json

import pandas as pd
import pytest
from helpers import assert_one_line_error, run_cli, tiny_config

from kaggle_digits.runs.io import sha256_file
from kaggle_digits.training.run import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from helpers import make_tiny_data_dir

    tmp_path = tmp_path_factory.mktemp("predict")
    data_dir = make_tiny_data_dir(tmp_path)
    _, run_dir = train(tiny_config(tmp_path, data_dir, arch="simple_cnn", epochs=1),
                       log=lambda _: None)
    return run_dir, data_dir


@pytest.mark.parametrize("target", ["run_dir", "keras_file"])
def test_predict_reproduces_the_runs_submission(target, tiny_run, tmp_path):
    run_dir, data_dir = tiny_run
    model = run_dir if target == "run_dir" else run_dir / "model.keras"
    out = tmp_path / "again.csv"
    result = run_cli("predict.py", "--model", str(model), "--input",
                     str(data_dir / "test.csv"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == (run_dir / "submission.csv").read_text()
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["tta"] == 1
    assert record["data_fingerprint"]["test.csv"] == sha256_file(data_dir / "test.csv")
    assert record["submission_sha256"] == sha256_file(out)


def test_predict_defaults_to_the_runs_test_csv_and_takes_tta(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = run_cli("predict.py", "--model", str(run_dir), "--out", str(tmp_path / "t.csv"),
                     "--tta", "5")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "t.csv")) == 60 and "TTA 5 views" in result.stdout


@pytest.mark.parametrize("problem", ["no model", "corrupt model", "bad input", "bad tta"])
def test_predict_errors_are_one_line_and_write_nothing(problem, tiny_run, tmp_path):
    run_dir, data_dir = tiny_run
    bad_csv = tmp_path / "bad.csv"
    frame = pd.read_csv(data_dir / "test.csv")
    frame.loc[3, "pixel5"] = -1
    frame.to_csv(bad_csv, index=False)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes((run_dir / "model.keras").read_bytes()[:100])
    args = {"no model": ["--model", str(tmp_path)],
            "corrupt model": ["--model", str(corrupt)],
            "bad input": ["--model", str(run_dir), "--input", str(bad_csv)],
            "bad tta": ["--model", str(run_dir), "--tta", "0"]}[problem]
    result = run_cli("predict.py", *args, "--out", str(tmp_path / "out.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    needle = {"no model": "no model.keras", "bad input": "line 5, column 'pixel5'",
              "corrupt model": "corrupt.keras: cannot load the model (not a .keras archive: "
                               "the file is corrupt or truncated)",
              "bad tta": "tta must be between"}[problem]
    assert needle in result.stderr
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.slow
def test_predict_refuses_a_changed_test_csv_unless_named(tiny_run, tmp_path):
    run_dir, data_dir = tiny_run
    changed = tmp_path / "data"
    changed.mkdir()
    frame = pd.read_csv(data_dir / "test.csv")
    frame.iloc[:30].to_csv(changed / "test.csv", index=False)
    config = json.loads((run_dir / "config.json").read_text())
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("metrics.json", "model.keras"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    (copy / "config.json").write_text(json.dumps({**config, "data_dir": str(changed)}))
    result = run_cli("predict.py", "--model", str(copy), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "SHA-256 mismatch" in result.stderr
    assert not (tmp_path / "o.csv").exists()
    named = run_cli("predict.py", "--model", str(copy), "--input", str(changed / "test.csv"),
                    "--out", str(tmp_path / "o.csv"))
    assert named.returncode == 0, named.stderr
    assert len(pd.read_csv(tmp_path / "o.csv")) == 30


@pytest.mark.slow
def test_a_model_with_a_lambda_layer_is_refused(tiny_run, tmp_path):
    """Safe mode: a .keras file whose Lambda layer would run arbitrary Python is never loaded."""
    import keras

    _, data_dir = tiny_run
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(flat))
    model.save(tmp_path / "lambda.keras")
    result = run_cli("predict.py", "--model", str(tmp_path / "lambda.keras"), "--input",
                     str(data_dir / "test.csv"), "--out", str(tmp_path / "out.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "lambda.keras: cannot load the model" in result.stderr
    assert "safe_mode" in result.stderr and not (tmp_path / "out.csv").exists()


def test_a_model_is_traced_once_for_every_batch_size_and_matches_keras_predict(tiny_run,
                                                                              monkeypatch):
    """Keras' predict traced each model twice (the first batch's exact shape, then relaxed)."""
    import numpy as np
    import tensorflow as tf

    from kaggle_digits.evaluation.predict import PREDICT_BATCH_SIZE, load_keras_model, predict_probs

    model = load_keras_model(tiny_run[0] / "model.keras")
    traces = []
    original = model.call

    def counted_call(*args, **kwargs):
        if not tf.executing_eagerly():
            traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "call", counted_call)
    rng = np.random.default_rng(0)
    for rows in (80, 60, PREDICT_BATCH_SIZE + 3):
        images = rng.integers(0, 256, (rows, 28, 28, 1), dtype=np.uint8)
        probs = predict_probs(model, images)
        assert probs.shape == (rows, 10) and probs.dtype == np.float32
        expected = model.predict(images.astype(np.float32), batch_size=PREDICT_BATCH_SIZE,
                                 verbose=0)
        np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    assert predict_probs(model, np.zeros((0, 28, 28, 1), np.uint8)).shape == (0, 10)
    assert len(traces) == 1 + 2  # Ours once; Keras' predict above twice (80, then relaxed).


def test_a_width_normalized_run_learns_predicts_and_refuses_its_model_under_another_variant(
        tmp_path):
    """``train --input-width`` as a user runs it (the bundled sample, no --data): the model
    learns through its normalization, predict feeds it raw digits, and a run whose config no
    longer says how its model takes its digits is refused, not fed them."""
    result = run_cli("train.py", "--arch", "simple_cnn", "--input-width", "20", "--epochs", "2",
                     "--output-dir", str(tmp_path / "runs"), "--submissions-dir",
                     str(tmp_path / "subs"), "--run-name", "w20")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "w20"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["input_width"] == 20
    assert json.loads((run_dir / "metrics.json").read_text())["val_accuracy"] > 0.9
    again = run_cli("predict.py", "--model", str(run_dir), "--out", str(tmp_path / "again.csv"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.csv").read_text() == (run_dir / "submission.csv").read_text()
    (run_dir / "config.json").write_text(json.dumps({**config, "input_width": 0}))
    refused = run_cli("predict.py", "--model", str(run_dir), "--out", str(tmp_path / "no.csv"))
    assert_one_line_error(refused, "model.keras: the model takes digits rescaled to 20 pixels "
                                   "wide, but its run was trained on the digits as given")
    assert not (tmp_path / "no.csv").exists()
