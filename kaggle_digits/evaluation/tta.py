"""Test-time augmentation: average a model's predictions over small, fixed shifts and rotations.

A digit shifted by a pixel or turned a few degrees is the same digit, so averaging over such views
smooths out a model's sensitivity to exact placement. The views are fixed (not random), so TTA
predictions are reproducible and the same for validation and test rows.
"""

from __future__ import annotations

from typing import Callable

import albumentations as A
import cv2
import numpy as np

from kaggle_digits import UserError

# (dx, dy, degrees), identity first; --tta N uses the first N.
TTA_VIEWS = ((0, 0, 0.0), (1, 0, 0.0), (-1, 0, 0.0), (0, 1, 0.0), (0, -1, 0.0), (0, 0, 8.0),
             (0, 0, -8.0), (1, 1, 0.0), (-1, -1, 0.0), (1, -1, 0.0), (-1, 1, 0.0))
MAX_TTA = len(TTA_VIEWS)
_CHANNELS_PER_CALL = 256


def check_tta(views: int) -> int:
    if not 1 <= views <= MAX_TTA:
        raise UserError(f"tta must be between 1 (off) and {MAX_TTA}. Received: tta={views}")
    return views


def view(images: np.ndarray, dx: int, dy: int, degrees: float) -> np.ndarray:
    """``images`` (N, 28, 28, 1) uint8 shifted by (dx, dy) pixels and turned by ``degrees``."""
    if dx == dy == 0 and degrees == 0:
        return images
    warp = A.Affine(translate_px={"x": (dx, dx), "y": (dy, dy)}, rotate=(degrees, degrees),
                    interpolation=cv2.INTER_LINEAR, border_mode=cv2.BORDER_CONSTANT, fill=0,
                    p=1.0)
    out = np.empty_like(images)
    # One call warps many images stacked as channels; per-image calls cost Python time each.
    for start in range(0, len(images), _CHANNELS_PER_CALL):
        stack = np.ascontiguousarray(images[start:start + _CHANNELS_PER_CALL, :, :, 0]
                                     .transpose(1, 2, 0))
        warped = warp(image=stack)["image"].reshape(stack.shape)
        out[start:start + _CHANNELS_PER_CALL, :, :, 0] = warped.transpose(2, 0, 1)
    return out


def predict_with_tta(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                     views: int = 1) -> np.ndarray:
    """Mean of ``predict`` over the first ``views`` TTA views, rows in the order of ``images``."""
    check_tta(views)
    total = None
    for dx, dy, degrees in TTA_VIEWS[:views]:
        probs = np.asarray(predict(view(images, dx, dy, degrees)), dtype=np.float64)
        total = probs if total is None else total + probs
    return (total / views).astype(np.float32)
