"""Predictions from saved models: a run directory (one model or one per fold) or a .keras file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from kaggle_digits.data import DigitData, read_digits_csv
from kaggle_digits.io_utils import load_npy, sha256_file, write_json_atomic
from kaggle_digits.submission import write_submission


def model_paths(path: str | os.PathLike) -> list[Path]:
    """The model files behind ``path``: itself, a run's model.keras, or a k-fold run's fold models.

    Raises:
        ValueError: nothing loadable there.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix != ".keras":
            raise ValueError(f"{path}: not a .keras model file")
        return [path]
    if (path / "model.keras").is_file():
        return [path / "model.keras"]
    folds = sorted(path.glob("folds/fold*/model.keras"), key=lambda p: int(p.parent.name[4:]))
    if folds:
        return folds
    raise ValueError(f"{path}: no model.keras (is it a finished run directory or a .keras file?)")


def load_models(path: str | os.PathLike) -> list:
    """Models loaded in Keras safe mode (no arbitrary code from the file)."""
    import keras

    import kaggle_digits.models  # noqa: F401  Registers the custom layers (PositionEmbedding).

    models = []
    for model_path in model_paths(path):
        try:
            models.append(keras.models.load_model(model_path, safe_mode=True))
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{model_path}: cannot load the model "
                             f"({str(exc).splitlines()[0]})") from None
    return models


def predict_images(models: list, images: np.ndarray, tta: int = 1) -> np.ndarray:
    """Mean class probabilities of the models (each with ``tta`` views)."""
    from kaggle_digits.training import predict_probs

    return np.mean([predict_probs(model, images, tta) for model in models], axis=0)


def predict_csv(model: str | os.PathLike, input_csv: str | os.PathLike,
                out_csv: str | os.PathLike, tta: int = 1,
                log: Callable[[str], None] = print) -> tuple[np.ndarray, Path]:
    """Predict a test-format CSV and write a submission plus a JSON of where it came from."""
    images, _ = read_digits_csv(input_csv, labelled=False)
    models = load_models(model)
    log(f"predicting {len(images):,} rows of {input_csv} with {len(models)} model(s)"
        + (f", TTA {tta} views" if tta > 1 else ""))
    probs = predict_images(models, images, tta)
    submission = write_submission(probs.argmax(axis=1), out_csv, expected_rows=len(images))
    write_json_atomic(Path(out_csv).with_suffix(".json"), {
        "model": str(model), "models": [str(p) for p in model_paths(model)],
        "input": str(input_csv), "data_fingerprint": {Path(input_csv).name:
                                                      sha256_file(input_csv)},
        "tta": tta, "submission_sha256": sha256_file(submission),
    })
    return probs, submission


def rescore_with_tta(run_dir: Path, data: DigitData, tta: int) -> tuple[np.ndarray | None,
                                                                         np.ndarray]:
    """A run's validation and test probabilities predicted again with ``tta`` views.

    Each k-fold model predicts only the rows it did not train on, so the out-of-fold property
    survives.
    """
    models = load_models(run_dir)
    val_probs = None
    if (run_dir / "val_indices.npy").exists():
        val_indices = load_npy(run_dir / "val_indices.npy")
        val_probs = np.zeros((len(val_indices), 10), dtype=np.float32)
    test_probs = np.zeros((len(data.test_images), 10))
    fold_of_row = (load_npy(run_dir / "fold_of_row.npy")
                   if (run_dir / "fold_of_row.npy").exists() else None)
    for fold, model in enumerate(models, start=1):
        test_probs += predict_images([model], data.test_images, tta) / len(models)
        if val_probs is not None:
            rows = (np.arange(len(val_indices)) if fold_of_row is None
                    else np.flatnonzero(fold_of_row[val_indices] == fold))
            val_probs[rows] = predict_images([model], data.train_images[val_indices[rows]], tta)
    return val_probs, test_probs.astype(np.float32)
