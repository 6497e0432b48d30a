"""Model registry; importing this package registers every built-in architecture."""

from kaggle_digits.models import cnn  # noqa: F401  (registers the CNNs)
from kaggle_digits.models.registry import (
    ModelSpec,
    build_model,
    get_model_spec,
    list_models,
    register_model,
)

__all__ = ["ModelSpec", "build_model", "get_model_spec", "list_models", "register_model"]
