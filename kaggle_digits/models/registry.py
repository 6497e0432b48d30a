"""Architectures registered by name, as timm and keras-hub do: ``build_model("improved_cnn")``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import keras

from kaggle_digits import Registry, UserError
from kaggle_digits.models.preprocessing import with_input_width


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., keras.Model]
    description: str
    # Training defaults that belong to the design (e.g. improved_cnn is meant to be trained with
    # augmentation and a cosine schedule); explicit CLI options override them.
    train_defaults: dict


_REGISTRY: Registry = Registry("architecture", "arch")


def register_model(name: str, description: str, **train_defaults):
    """Register a builder ``fn(**hyperparameters) -> keras.Model`` under ``name``."""

    def decorator(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        defaults = dict(train_defaults)
        defaults.setdefault("label_smoothing", 0.0)  # Plain cross-entropy unless a design asks.
        _REGISTRY.add(name, ModelSpec(name, builder, description, defaults))
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown architecture; choose one of: {', '.join(list_models())}. "
                         f"Received: arch={name!r}") from None


def model_options(name: str) -> list[str]:
    """The keyword hyperparameters an architecture's builder accepts."""
    return list(inspect.signature(get_model_spec(name).builder).parameters)


def builder_defaults(name: str) -> dict:
    """The default of every builder option, as JSON would hold it (tuples become lists)."""
    defaults = {}
    for option, parameter in inspect.signature(get_model_spec(name).builder).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            value = parameter.default
            defaults[option] = list(value) if isinstance(value, tuple) else value
    return defaults


def build_model(name: str, precision: str = "float32", input_width: int = 0,
                **hyperparameters) -> keras.Model:
    """Build a fresh, uncompiled model; it takes uint8-range pixels of shape (28, 28, 1).

    ``input_width`` > 0 puts :class:`~kaggle_digits.models.preprocessing.WidthNormalization` at
    the model's entry: the digits' bounding boxes are rescaled to that many pixels wide inside
    the model, so whatever feeds it gives raw digits.

    ``precision`` is a Keras dtype policy name (a run's config allows those in
    ``config.PRECISIONS``): with ``mixed_bfloat16`` the layers compute in bfloat16 (fast on a GPU
    or a CPU with AVX-512 BF16 or AMX, emulated elsewhere) and keep float32 weights; every
    builder ends in ``probs_head``, a float32 softmax, so probabilities and the loss keep full
    precision.
    """
    accepted = model_options(name)
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise UserError(f"{name} does not take option(s) {', '.join(unknown)}; it takes: "
                         f"{', '.join(accepted)}. Received: "
                         f"{', '.join(f'{key}={hyperparameters[key]!r}' for key in unknown)}")
    builder = get_model_spec(name).builder
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(precision)  # Read by each layer as it is made.
        return with_input_width(builder(**hyperparameters), input_width)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, UserError):
            raise
        # Keras' layers check the values they are given (a dropout rate of 1.5, an unknown
        # activation, filters that are no numbers): with options the user changed, that is
        # their value to fix; with the builder's own defaults it is a bug, and keeps its
        # traceback.
        defaults = builder_defaults(name)
        changed = {key: value for key, value in hyperparameters.items()
                   if key not in defaults or _as_json(value) != defaults[key]}
        if not changed:
            raise
        raise UserError(f"{name} cannot be built with "
                        f"{', '.join(f'{key}={value!r}' for key, value in changed.items())}: "
                        f"{exc}") from None
    finally:
        keras.config.set_dtype_policy(previous)


def _as_json(value):
    return list(value) if isinstance(value, tuple) else value
