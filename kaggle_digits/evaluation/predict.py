"""Predictions from saved models: a run directory (one model or one per fold) or a .keras file."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Callable

import numpy as np

from kaggle_digits import UserError
from kaggle_digits.data.load import (
    NUM_CLASSES,
    DigitData,
    find_csv,
    fingerprint_files,
    read_digits_csv,
    resolve_data_dir,
)
from kaggle_digits.evaluation.tta import predict_with_tta
from kaggle_digits.runs.io import sha256_file
from kaggle_digits.runs.rundir import DataMismatch, RunDir
from kaggle_digits.submission.files import record_path, write_submission_with_record

PREDICT_BATCH_SIZE = 1024


_inference_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inference_function(model):
    """The model's forward pass as one ``tf.function`` traced once for any batch size.

    Keras' ``predict`` traces its step for the first batch's exact shape and again, relaxed, for
    the next shape (the validation rows, then the test rows), a noticeable share of a small
    run. Under a multi-replica strategy Keras' ``predict`` splits the batches over the replicas:
    those models keep it.
    """
    import tensorflow as tf

    if model.distribute_strategy.num_replicas_in_sync > 1:
        return None
    function = _inference_functions.get(model)
    if function is None:
        this = weakref.ref(model)  # The cache must not keep the model alive.
        spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
        function = tf.function(lambda images: this()(images, training=False),
                               input_signature=[spec])
        _inference_functions[model] = function
    return function


def predict_probs(model, images: np.ndarray, tta: int = 1) -> np.ndarray:
    """Class probabilities of uint8 images, averaged over ``tta`` fixed views when > 1."""
    forward = _inference_function(model)

    def predict(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if forward is None:
            return model.predict(batch, batch_size=PREDICT_BATCH_SIZE, verbose=0)
        parts = [forward(batch[start:start + PREDICT_BATCH_SIZE]).numpy()
                 for start in range(0, len(batch), PREDICT_BATCH_SIZE)]
        return (np.concatenate(parts) if parts
                else np.zeros((0, model.outputs[0].shape[-1]), dtype=np.float32))

    return predict_with_tta(predict, images, tta)


def model_paths(path: str | os.PathLike) -> list[Path]:
    """The model files behind ``path``: itself, a run's model.keras, or a k-fold run's fold models.

    Raises:
        ValueError: nothing loadable there.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise UserError(f"{path}: not a .keras model file")
        return [path]
    return RunDir(path).model_paths()


def load_keras_model(model_path: str | os.PathLike, input_width: int | None = None):
    """One model, loaded in Keras safe mode (no arbitrary code from the file).

    ``input_width`` is the input variant its run recorded (``TrainConfig.input_width``): the
    model must normalize its digits that way. None: a bare ``.keras`` file, whose own layers are
    all there is to say how it takes its digits.

    Raises:
        ValueError: naming the file and what is wrong with it (Keras calls a corrupt file
            "File not found"), or a model whose input variant is not its run's.
    """
    import zipfile

    import keras

    import kaggle_digits.models  # noqa: F401  Registers the custom layers (PositionEmbedding).
    from kaggle_digits.models.preprocessing import check_input_width

    model_path = Path(model_path)
    if not model_path.is_file():
        raise UserError(f"{model_path}: cannot load the model (file not found)")
    if not zipfile.is_zipfile(model_path):
        raise UserError(f"{model_path}: cannot load the model (not a .keras archive: the file "
                         f"is corrupt or truncated)")
    try:
        model = keras.models.load_model(model_path, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
        raise UserError(f"{model_path}: cannot load the model "
                         f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if input_width is not None:
        check_input_width(model, input_width, model_path)
    return model


def load_models(path: str | os.PathLike) -> list:
    """The models behind ``path`` (see :func:`model_paths`), loaded in safe mode; a run's models
    must take their digits as the run recorded."""
    paths = model_paths(path)
    input_width = RunDir(path).read_config().input_width if Path(path).is_dir() else None
    return [load_keras_model(model_path, input_width) for model_path in paths]


def predict_images(models: list, images: np.ndarray, tta: int = 1) -> np.ndarray:
    """Mean class probabilities of the models (each with ``tta`` views)."""
    return np.mean([predict_probs(model, images, tta) for model in models], axis=0)


def default_input(model: str | os.PathLike) -> Path:
    """test.csv of the run's recorded data directory, else of the default data directory.

    A run's own test.csv must still be the file it was trained beside (SHA-256 in
    metrics.json); a different file is predicted only when named with --input.

    Raises:
        ValueError: no test.csv, or the run's test.csv has changed.
    """
    run, data_dir = RunDir(model), None
    if Path(model).is_dir() and run.exists:
        data_dir = run.read_config().data_dir
    test_csv = find_csv(data_dir or resolve_data_dir(None)[0], "test")
    if test_csv is None:
        raise UserError("no test.csv found; give one with --input")
    if run.finished and test_csv.name == "test.csv":
        try:
            run.check_data(fingerprint_files([test_csv]), names=("test.csv",))
        except DataMismatch:
            raise UserError(f"{test_csv} is not the test.csv {model} was made with (SHA-256 "
                             f"mismatch); pass --input to predict a different file on "
                             f"purpose") from None
    return test_csv


def predict_csv(model: str | os.PathLike, input_csv: str | os.PathLike,
                out_csv: str | os.PathLike, tta: int = 1,
                log: Callable[[str], None] = print) -> tuple[np.ndarray, Path]:
    """Predict a test-format CSV and write a submission plus a JSON of where it came from."""
    record_path(out_csv)  # A path that is not a .csv is refused before anything is written.
    images, _ = read_digits_csv(input_csv, labelled=False)
    models = load_models(model)
    log(f"predicting {len(images):,} rows of {input_csv} with {len(models)} model(s)"
        + (f", TTA {tta} views" if tta > 1 else ""))
    probs = predict_images(models, images, tta)
    submission, _ = write_submission_with_record(probs.argmax(axis=1), out_csv, {
        "model": str(model), "models": [str(p) for p in model_paths(model)],
        "input": str(input_csv), "data_fingerprint": {Path(input_csv).name:
                                                      sha256_file(input_csv)},
        "tta": tta}, expected_rows=len(images))
    return probs, submission


def rescore_with_tta(run: RunDir, data: DigitData, tta: int) -> tuple[np.ndarray | None,
                                                                       np.ndarray]:
    """A run's validation and test probabilities predicted again with ``tta`` views.

    Each k-fold model predicts only the rows it did not train on, so the out-of-fold property
    survives.
    """
    if run.model_path.is_file():  # One model: it predicts its validation rows, if any.
        models = [(run.model_path, run.load_array("val_indices")
                   if run.has_array("val_indices") else None)]
    else:  # Each fold's model predicts the rows it held out, by fold number.
        models = [(fold.model_path, fold.rows) for fold in run.fold_models()]
    val_probs = None
    if models[0][1] is not None:
        val_probs = np.zeros((len(data.train_labels), NUM_CLASSES), dtype=np.float32)
        scored = np.zeros(len(data.train_labels), dtype=bool)
    test_probs = np.zeros((len(data.test_images), NUM_CLASSES))
    input_width = run.read_config().input_width
    for model_path, rows in models:
        model = load_keras_model(model_path, input_width)
        test_probs += predict_images([model], data.test_images, tta) / len(models)
        if val_probs is not None:
            val_probs[rows] = predict_images([model], data.train_images[rows], tta)
            scored[rows] = True
    if val_probs is not None:
        val_indices = run.load_array("val_indices")
        if not scored[val_indices].all():
            raise UserError(f"{run}: damaged run ({run.array_path('val_indices').name} names "
                             f"rows that no model of it held out)")
        val_probs = val_probs[val_indices]
    return val_probs, test_probs.astype(np.float32)
