"""The one configuration object of a training run, saved beside it so the run can be repeated."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from kaggle_digits import UserError
from kaggle_digits.runs.io import FILE_NAME_MAX_BYTES, parse_json, temp_name_bytes

LR_SCHEDULES = ("cosine", "plateau", "constant")
STRATEGIES = ("default", "mirrored")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
# Keras dtype policies (models/registry.py builds under them; kept here so checking a config
# does not load Keras).
PRECISIONS = ("float32", "mixed_bfloat16")

# Named starting points for train.py --preset; options given on the command line still win.
PRESETS = {
    # The quickest route to a usable model on 2 CPU cores: fast_cnn (Keller Jordan's MNIST
    # speedrun network) for two epochs, Adam with betas (0.7, 0.9) at a hot rate, warm-up then
    # cosine annealing (one cycle), no augmentation or regularisers. What it measures is in the
    # decisions and targets tables (docs/results.md), never here.
    "fast": {"arch": "fast_cnn", "epochs": 2, "batch_size": 256, "learning_rate": 1e-2,
             "lr_schedule": "cosine", "warmup_epochs": 0.3, "adam_beta_1": 0.7,
             "adam_beta_2": 0.9, "augment": False, "label_smoothing": 0.0},
}

# The longest file name the toolkit makes of a run name: the temporary file through which the
# record of its submission copy is written, after RunDir.create numbered a taken name.
_LONGEST_DERIVED = "{name}-999.json"


def name_max_bytes() -> int:
    """How many bytes (UTF-8, as the file system counts them) a run, study or output name may
    take, so that every file name made of it fits the file system's limit."""
    return FILE_NAME_MAX_BYTES - temp_name_bytes(_LONGEST_DERIVED.format(name=""))


def check_name(name: str, what: str = "run_name") -> str:
    """A run, study or output name that stays inside the directory it is made in: no path
    separators, no ``.``/``..``, nothing absolute, no control characters; and short enough, in
    bytes, for every file name made of it (checked here, before anything is trained).

    Raises:
        ValueError: naming ``what`` and the name received.
    """
    problem = None
    if not isinstance(name, str) or not name.strip():
        problem = "it is empty"
    elif len(os.fsencode(name)) > name_max_bytes():
        raise UserError(f"{what} is too long: {len(os.fsencode(name))} bytes in UTF-8, and the "
                         f"files made of it must fit the file system's {FILE_NAME_MAX_BYTES}-"
                         f"byte names, so at most {name_max_bytes()}. Received: "
                         f"{what}={name!r}")
    elif "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        problem = "it holds a path separator"
    elif name in (".", "..") or name.startswith("."):
        problem = "it starts with a dot"
    elif any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        # Control characters (DEL included) and invisible format characters such as the
        # right-to-left override, which make a listed name read as another.
        problem = "it holds a control or invisible formatting character"
    if problem:
        raise UserError(f"{what} must be a plain name, not a path ({problem}). Received: "
                         f"{what}={name!r}")
    return name


# What a field is to a run. Every "which fields" question (which settings a finished run must
# share to be reused, which a full-data run must share with the held-out twin that speaks for it,
# which ones validate() checks and how) is answered from these roles and the bounds declared
# with each field below, never from a list kept beside the class: a new field without a role
# fails tests/training/test_config.py.
ROLES = {
    "learns": "decides what the run learns; runs that differ here are different runs",
    "rows": "which labelled rows it trains and is judged on (a full-data run's twin differs here)",
    "length": "how long it trains (a full-data run trains for the epochs its twin found)",
    "compute": "how it computes, not what it learns",
    "location": "where it reads and writes",
    "record": "what it was made with, kept for the record",
}


def _field(role: str, default=dataclasses.MISSING, *, factory=dataclasses.MISSING,
           bounds: tuple | None = None, open_ends: str = "", choices: tuple = (),
           arch_default: bool = False, augment_range: bool = False):
    """A TrainConfig field with its role, and where it applies its bounds (``open_ends``:
    ``"low"``, ``"high"`` or ``"both"`` leave those ends out), its choices, and whether None
    means the architecture's default."""
    return field(default=default, default_factory=factory, metadata={
        "role": role, "bounds": bounds, "open_ends": open_ends, "choices": choices,
        "arch_default": arch_default, "augment_range": augment_range})


_CONTAINERS = {"dict": (dict, "a mapping"), "list": (list, "a list")}


def fields_with_role(*roles: str) -> tuple[str, ...]:
    """The names of TrainConfig's fields whose role is one of ``roles``, in field order."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"roles must be among {', '.join(ROLES)}. Received: {sorted(unknown)}")
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["role"] in roles)


def check_integer(name: str, value, low: int, high: int) -> None:
    """Raises ValueError unless ``value`` is a whole number (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be a whole number. Received: {name}={value!r}")
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}. Received: {name}={value}")


def check_number(name: str, value, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    """Raises ValueError unless ``value`` is a finite number in the interval (NaN and inf are
    refused here, where they are read, not after epochs of NaN loss)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number. Received: {name}={value!r}")
    if value < low or value > high or (low_open and value == low) or \
            (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise UserError(f"{name} must be in {interval}. Received: {name}={value}")


# Short names people type (grids, search spaces), mapped to TrainConfig fields or builder options.
ALIASES = {"lr": "learning_rate", "dropout": "dropout_rate", "batch": "batch_size",
           "ema": "ema_momentum"}


def parse_value(text: str):
    """A value as people write it in a grid or space: ints, floats, true/false, else the text."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# Builder options added after runs were saved with every option written down, and the value that
# rebuilds those runs' models, oldest first: a saved config that names all of a builder's older
# options but not the added one predates it (improved_cnn's stem option, 2026-12-06; its
# stem_norm, 2026-12-06).
_IMPROVED_CNN_FIRST_OPTIONS = {"filters", "kernel_size", "stride", "dense_units", "dropout_rate",
                               "activation"}
OPTIONS_ADDED_LATER = {
    "improved_cnn": ((_IMPROVED_CNN_FIRST_OPTIONS, {"stem": "conv5"}),
                     (_IMPROVED_CNN_FIRST_OPTIONS | {"stem"}, {"stem_norm": "batch"})),
}

@dataclass
class TrainConfig:
    """Everything that decides what a training run does.

    ``seed`` drives weights, shuffling and augmentation; ``split_seed`` picks the validation
    rows, so models trained with different seeds share one split and can be ensembled.
    ``folds`` > 1 trains one model per stratified fold (out-of-fold validation); ``full`` trains on
    every labelled row for exactly ``epochs`` epochs (the final fit, no validation); ``tta`` > 1
    averages predictions over that many fixed shifts/rotations.
    ``precision`` is the Keras dtype policy the model computes in (``mixed_bfloat16``: bfloat16
    compute, float32 weights and softmax).
    ``label_smoothing`` softens the training targets (0 = plain cross-entropy).
    ``ema_momentum`` > 0 keeps an exponential moving average of the weights (Polyak averaging,
    Keras' ``use_ema``) that validation, early stopping, checkpoints and the saved model use.
    ``rotate_deg``, ``shift_fraction``, ``zoom_fraction`` and ``shear_deg`` are the ranges of the
    augmentation's random affine warp (used when ``augment`` is on).
    ``exclude_rows`` are train.csv rows (counted from 0) left out of training, such as likely
    label issues (kaggle_digits/evaluation/label_issues.py); every score is still computed on
    all rows.
    ``pseudo_labels`` adds test rows to the training rows (never to validation) as the labels an
    earlier ensemble gave them: one character per test.csv row, the digit, or ``.`` for a row
    left out. It lives in the config so the saved config alone repeats the run, on any machine.
    ``teacher`` lists finished runs (or folders of them, as a recipe leaves) whose models teach
    this one (knowledge distillation): its training targets become ``1 - distill_weight`` of the
    label plus ``distill_weight`` of the teachers' averaged probabilities, softened by
    ``distill_temperature``, and only teacher models that never trained on the rows this run is
    judged on teach it (kaggle_digits/training/distill.py).
    ``None`` in an architecture-defaulted field means the value registered with the architecture;
    :meth:`resolved` fills those in, and the resolved config is what a run saves.
    """

    arch: str = _field("learns", "improved_cnn")
    data_dir: str | None = _field("location", None)
    epochs: int | None = _field("length", None, bounds=(1, 10_000), arch_default=True)
    batch_size: int | None = _field("learns", None, bounds=(1, 1 << 20), arch_default=True)
    learning_rate: float | None = _field("learns", None, bounds=(0.0, 100.0), open_ends="low",
                                         arch_default=True)
    lr_schedule: str | None = _field("learns", None, choices=LR_SCHEDULES, arch_default=True)
    augment: bool | None = _field("learns", None, arch_default=True)
    optimizer: str = _field("learns", "adam", choices=OPTIMIZERS)
    # Adam's moment decays (Keras' defaults); the fast preset's one-epoch recipe runs hotter.
    adam_beta_1: float = _field("learns", 0.9, bounds=(0.0, 1.0), open_ends="high")
    adam_beta_2: float = _field("learns", 0.999, bounds=(0.0, 1.0), open_ends="high")
    label_smoothing: float | None = _field("learns", None, bounds=(0.0, 1.0), open_ends="high",
                                           arch_default=True)
    ema_momentum: float = _field("learns", 0.0, bounds=(0.0, 1.0), open_ends="high")
    # The augmentation's random affine ranges (with ``augment``): the defaults are the warps
    # this toolkit always used; the strongest honest ensembles on this competition used
    # rotation 15, zoom 0.15, shift 0.1.
    rotate_deg: float = _field("learns", 10.0, bounds=(0.0, 180.0), augment_range=True)
    shift_fraction: float = _field("learns", 0.1, bounds=(0.0, 0.5), augment_range=True)
    zoom_fraction: float = _field("learns", 0.1, bounds=(0.0, 0.9), augment_range=True)
    shear_deg: float = _field("learns", 5.0, bounds=(0.0, 60.0), augment_range=True)
    # Distortions beside the affine warp (kaggle_digits/data/augment.py), each off by default:
    # a random crop of crop_size pixels square resized back (0 = off), a grid distortion of
    # grid_steps cells per side moving by up to grid_distort of a cell, and an elastic
    # distortion (Simard et al. 2003) of strength elastic_alpha and smoothness elastic_sigma.
    crop_size: int = _field("learns", 0, bounds=(0, 28), augment_range=True)
    grid_distort: float = _field("learns", 0.0, bounds=(0.0, 1.0), augment_range=True)
    grid_steps: int = _field("learns", 4, bounds=(1, 28), augment_range=True)
    elastic_alpha: float = _field("learns", 0.0, bounds=(0.0, 1000.0), augment_range=True)
    elastic_sigma: float = _field("learns", 4.0, bounds=(0.0, 100.0), open_ends="low",
                                  augment_range=True)
    # The input variant (kaggle_digits/models/preprocessing.py): 0 feeds the digits as given;
    # W rescales each digit's bounding box to W pixels wide inside the model (Ciresan's width
    # normalization), so members that see the digits differently can be ensembled.
    input_width: int = _field("learns", 0, bounds=(0, 28))
    # A seed must fit the 32-bit seeding of NumPy and TensorFlow.
    seed: int = _field("learns", 42, bounds=(0, 2**31 - 1))
    split_seed: int = _field("rows", 42, bounds=(0, 2**31 - 1))
    val_split: float = _field("rows", 0.2, bounds=(0.0, 1.0), open_ends="both")
    patience: int = _field("length", 6, bounds=(0, 10_000))
    folds: int = _field("rows", 1, bounds=(1, 100))  # Fold seeds add up to 100.
    full: bool = _field("rows", False)
    tta: int = _field("learns", 1, bounds=(1, 1_000))
    deterministic: bool = _field("learns", False)
    strategy: str = _field("learns", "default", choices=STRATEGIES)
    precision: str = _field("learns", "float32", choices=PRECISIONS)
    tensorboard: bool = _field("compute", False)
    warmup_epochs: float = _field("learns", 1.0, bounds=(0.0, 10_000.0))
    output_dir: str = _field("location", "runs")
    submissions_dir: str = _field("location", "submissions")
    run_name: str | None = _field("location", None)
    model_options: dict = _field("learns", factory=dict)
    pseudo_labels: str = _field("learns", "")
    exclude_rows: list = _field("rows", factory=list)
    teacher: list = _field("learns", factory=list)
    distill_weight: float = _field("learns", 0.9, bounds=(0.0, 1.0), open_ends="low")
    distill_temperature: float = _field("learns", 1.0, bounds=(0.0, 100.0), open_ends="low")
    versions: dict = _field("record", factory=dict)  # Filled in by train().

    def resolved(self) -> "TrainConfig":
        """A copy with every architecture and builder default filled in and every value checked."""
        from kaggle_digits.models import builder_defaults, get_model_spec

        spec = get_model_spec(self.arch)
        values = dataclasses.asdict(self.with_data_dir())
        # Every builder option is written down, so the saved config rebuilds the same model even
        # after a later version changes a builder's defaults.
        values["model_options"] = {**builder_defaults(self.arch), **values["model_options"]}
        if values["learning_rate"] is None and self.model_options.get("fine_tune", 0) > 0:
            # Unfrozen pretrained layers want a gentler rate than a new head.
            values["learning_rate"] = spec.train_defaults.get("fine_tune_learning_rate")
        for f in dataclasses.fields(TrainConfig):
            if f.metadata["arch_default"] and values[f.name] is None:
                values[f.name] = spec.train_defaults[f.name]
        config = TrainConfig(**values)
        config.validate()
        return config

    def build_model(self):
        """A fresh, uncompiled model of this config: its architecture, options, precision and
        input variant (every place that trains or checks a run builds it here)."""
        from kaggle_digits.models import build_model

        return build_model(self.arch, self.precision, input_width=self.input_width,
                           **self.model_options)

    def with_data_dir(self) -> "TrainConfig":
        """A copy whose ``data_dir`` names, as an absolute path, the directory this run reads:
        the one given, else the default (Kaggle's input, the fetched data, else the bundled
        sample). Resolved once, where a config is made, so that fold jobs, their assembly and a
        later ``--resume`` from another working directory all read the same files, and the
        saved config says where they came from."""
        from kaggle_digits.data.load import resolve_data_dir

        data_dir, _ = resolve_data_dir(self.data_dir)
        return dataclasses.replace(self, data_dir=str(data_dir.absolute()))

    def validate(self) -> None:
        """Raises UserError naming the first setting out of range, of the wrong type or not
        among its choices, as its field declares them (None = the arch default)."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            kind, _, optional = f.type.partition(" | ")
            if value is None and optional == "None":
                continue
            if kind == "bool" and not isinstance(value, bool):
                raise UserError(f"{f.name} must be true or false. Received: {f.name}={value!r}")
            if kind == "int":
                check_integer(f.name, value, *meta["bounds"])
            elif kind == "float":
                check_number(f.name, value, *meta["bounds"],
                             low_open=meta["open_ends"] in ("low", "both"),
                             high_open=meta["open_ends"] in ("high", "both"))
            elif kind == "str" and not isinstance(value, str):
                raise UserError(f"{f.name} must be text. Received: {f.name}={value!r}")
            elif kind in _CONTAINERS and not isinstance(value, _CONTAINERS[kind][0]):
                raise UserError(f"{f.name} must be {_CONTAINERS[kind][1]}. Received: "
                                f"{f.name}={value!r}")
            if meta["choices"] and value not in meta["choices"]:
                raise UserError(f"{f.name} must be one of {', '.join(meta['choices'])}. "
                                f"Received: {f.name}={value!r}")
        if self.run_name is not None:
            check_name(self.run_name)
        if self.folds > 1 and self.full:
            raise UserError(f"folds and full exclude each other: k-fold validates every row, a "
                             f"full-data run validates none. Received: folds={self.folds}, "
                             f"full={self.full}")
        if self.full and self.lr_schedule == "plateau":
            raise UserError(f"a full-data run has no validation loss to watch; use "
                             f"--lr-schedule cosine or constant. Received: "
                             f"lr_schedule={self.lr_schedule!r}, full=True")
        from kaggle_digits.evaluation.tta import check_tta

        check_tta(self.tta)
        if not all(isinstance(row, int) and not isinstance(row, bool) and 0 <= row < 10**9
                   for row in self.exclude_rows):
            raise UserError(f"exclude_rows must be train.csv row numbers. Received: "
                            f"exclude_rows={self.exclude_rows[:5]!r}...")
        if not all(isinstance(path, str) and path for path in self.teacher):
            raise UserError(f"teacher must be a list of run directories. Received: "
                             f"teacher={self.teacher!r}")
        if self.teacher and self.pseudo_labels:
            raise UserError("teacher and pseudo_labels exclude each other: a teacher's soft "
                             "targets are made for labelled rows only")
        stray = sorted(set(self.pseudo_labels) - set(".0123456789"))
        if stray:
            raise UserError(f"pseudo_labels must hold one digit or '.' per test row. Received "
                             f"other characters: {stray}")

    def override(self, changes: dict) -> "TrainConfig":
        """A copy with ``changes`` applied: the one override grammar of the CLI's flags, sweep
        grids, recipe members and search trials.

        Keys are config fields or builder options of the (new) architecture, by name or alias
        (``lr``, ``dropout``, ``batch``); ``model_options`` merges a mapping of them. A change of
        ``arch`` drops the previous architecture's options, which it may not take.

        Raises:
            ValueError: a key that is neither, or values that do not resolve (checked here,
                before any run starts).
        """
        from kaggle_digits.models import model_options  # Loads Keras only once overriding.

        values = dataclasses.asdict(self)
        arch = changes.get("arch", self.arch)
        if arch != self.arch:
            values["model_options"] = {}
        values["arch"] = arch
        options = set(model_options(arch))
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = []
        for key, value in changes.items():
            key = ALIASES.get(key, key)
            if key == "model_options":
                values["model_options"] = {**values["model_options"], **dict(value)}
            elif key in fields:
                values[key] = value
            elif key in options:
                values["model_options"] = {**values["model_options"], key: value}
            else:
                unknown.append(key)
        if unknown:
            raise UserError(f"{arch} does not take option(s) {', '.join(unknown)}: neither a "
                             f"training setting nor an option of {arch} (options: "
                             f"{', '.join(sorted(options))})")
        config = TrainConfig(**values)
        config.resolved()
        return config

    @property
    def augment_ranges(self) -> dict[str, float | int]:
        """The augmentation's settings, as ``build_augmenter`` takes them."""
        return {f.name: (int if f.type == "int" else float)(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.metadata["augment_range"]}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown config field(s) {', '.join(unknown)}; a config holds "
                             f"{', '.join(sorted(known))}. Received: "
                             f"{', '.join(f'{key}={values[key]!r}' for key in unknown)}")
        config = cls(**values)
        config.validate()  # A file's numbers may be NaN, huge or of the wrong type.
        for older, added in OPTIONS_ADDED_LATER.get(config.arch, ()):
            if older <= set(config.model_options) and not set(added) & set(
                    config.model_options):
                config.model_options = {**config.model_options, **added}
        return config

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a saved config file (a run directory's is ``RunDir.read_config()``)."""
        path = Path(path)
        try:
            return cls.from_dict(parse_json(path.read_text()))
        except (OSError, json.JSONDecodeError, ValueError, TypeError) as exc:
            raise UserError(f"{path}: not a usable training config ({exc})") from None


def package_versions() -> dict[str, str]:
    """The versions a run was made with, saved in its config and metrics."""
    import albumentations
    import keras
    import numpy as np
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "albumentations": albumentations.__version__,
    }
