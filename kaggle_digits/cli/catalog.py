"""The registered architectures read from the source of the model modules
(``kaggle_digits/models/``) without importing them: ``train --list-archs`` answers as fast as
``--help`` (importing the builders loads TensorFlow, seconds of CPU). What it reads is what
``@register_model`` receives, so ``tests/models/test_models.py`` holds it against the
registry itself."""

from __future__ import annotations

import ast
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def _registering_modules() -> list[Path]:
    """The modules ``models/__init__.py`` imports to register the built-in architectures."""
    tree = ast.parse((MODELS_DIR / "__init__.py").read_text())
    names = [alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             and node.module == "kaggle_digits.models" for alias in node.names]
    return [MODELS_DIR / f"{name}.py" for name in names if (MODELS_DIR / f"{name}.py").exists()]


def _constants(tree: ast.Module) -> dict:
    """Module-level names bound to literals (``TRANSFER_DEFAULTS = {...}``)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "dict" and \
                    not value.args:  # dict(epochs=5, ...), as literal as {...}.
                value = ast.Dict([ast.Constant(k.arg) for k in value.keywords],
                                 [k.value for k in value.keywords])
            try:
                found[node.targets[0].id] = ast.literal_eval(value)
            except ValueError:
                pass
    return found


def _spreads(value: ast.expr, constants: dict, catalog: dict) -> dict:
    """What ``**value`` passes: a module constant, or another architecture's training
    defaults (``**get_model_spec("improved_cnn").train_defaults``)."""
    if isinstance(value, ast.Name) and isinstance(constants.get(value.id), dict):
        return constants[value.id]
    if isinstance(value, ast.Attribute) and value.attr == "train_defaults" and \
            isinstance(value.value, ast.Call) and value.value.args and \
            isinstance(value.value.args[0], ast.Constant):
        return catalog[value.value.args[0].value][1]
    raise ValueError(f"cannot read the training defaults {ast.unparse(value)!r} without "
                     f"importing the module")


def static_catalog() -> dict[str, tuple[str, dict]]:
    """Each built-in architecture's description and training defaults, by name."""
    catalog = {}
    for path in _registering_modules():
        tree = ast.parse(path.read_text())
        constants = _constants(tree)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and \
                        getattr(decorator.func, "id", None) == "register_model":
                    name, description = (ast.literal_eval(arg) for arg in decorator.args[:2])
                    defaults = {}
                    for keyword in decorator.keywords:
                        if keyword.arg is None:
                            defaults.update(_spreads(keyword.value, constants, catalog))
                        else:
                            defaults[keyword.arg] = ast.literal_eval(keyword.value)
                    defaults.setdefault("label_smoothing", 0.0)  # As register_model does.
                    catalog[name] = (description, defaults)
    return dict(sorted(catalog.items()))
