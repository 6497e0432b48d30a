"""Model registry; importing this package registers every built-in architecture."""

from kaggle_digits.models import (  # noqa: F401  (registers the models)
    cnn,
    losses,  # noqa: F401  (registers the custom loss for loading runs)
    sequence,
    transfer,
)
from kaggle_digits.models.registry import (
    ModelSpec,
    build_model,
    builder_defaults,
    get_model_spec,
    list_models,
    model_options,
    register_model,
)

__all__ = ["ModelSpec", "build_model", "builder_defaults", "get_model_spec",
           "list_models", "model_options", "register_model"]
