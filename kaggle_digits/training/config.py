"""The one configuration object of a training run, saved beside it so the run can be repeated."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
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
    # The quickest measured route to 99% validation accuracy on 2 CPU cores (BENCHMARKS.md):
    # improved_cnn with a stride-2 5x5 stem (a quarter of the work per image), no augmentation, no
    # dropout or label smoothing (regularisers slow the first epochs), a large batch and a short,
    # hot cosine schedule: 99.04% after 12 s of training. Two-layer strided nets plateaued at
    # 98.6%.
    "fast": {"arch": "improved_cnn",
             "model_options": {"stride": 2, "filters": "32,32,32,64", "dropout_rate": 0.0,
                               "stem": "conv5"},
             "augment": False, "label_smoothing": 0.0, "batch_size": 256, "learning_rate": 6e-3,
             "epochs": 2},
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
    elif any(ord(char) < 32 for char in name):
        problem = "it holds a control character"
    if problem:
        raise UserError(f"{what} must be a plain name, not a path ({problem}). Received: "
                         f"{what}={name!r}")
    return name


# Bounds of the whole-number settings: beyond them a value is a typo or hostile (a seed must fit
# the 32-bit seeding of NumPy and TensorFlow, fold seeds add up to 100).
INTEGER_BOUNDS = {"epochs": (1, 10_000), "batch_size": (1, 1 << 20), "seed": (0, 2**31 - 1),
                  "split_seed": (0, 2**31 - 1), "patience": (0, 10_000), "folds": (1, 100),
                  "tta": (1, 1_000)}
BOOLEAN_FIELDS = ("augment", "full", "deterministic", "tensorboard")
# The augmentation's random affine ranges (with ``augment``), their bounds and the defaults,
# which are the warps this toolkit always used; the strongest honest ensembles on this
# competition used rotation 15, zoom 0.15, shift 0.1.
AUGMENT_RANGES = {"rotate_deg": (0.0, 180.0), "shift_fraction": (0.0, 0.5),
                  "zoom_fraction": (0.0, 0.9), "shear_deg": (0.0, 60.0)}


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

# Fields whose None means "use the architecture's own default" (see register_model).
ARCH_DEFAULTED_FIELDS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "augment",
                         "label_smoothing")


@dataclass
class TrainConfig:
    """Everything that decides what a training run does.

    ``seed`` drives weights, shuffling and augmentation; ``split_seed`` picks the validation rows, so
    models trained with different seeds share one split and can be ensembled.
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

    arch: str = "improved_cnn"
    data_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    augment: bool | None = None
    optimizer: str = "adam"
    label_smoothing: float | None = None
    ema_momentum: float = 0.0
    rotate_deg: float = 10.0
    shift_fraction: float = 0.1
    zoom_fraction: float = 0.1
    shear_deg: float = 5.0
    seed: int = 42
    split_seed: int = 42
    val_split: float = 0.2
    patience: int = 6
    folds: int = 1
    full: bool = False
    tta: int = 1
    deterministic: bool = False
    strategy: str = "default"
    precision: str = "float32"
    tensorboard: bool = False
    warmup_epochs: float = 1.0
    output_dir: str = "runs"
    submissions_dir: str = "submissions"
    run_name: str | None = None
    model_options: dict = field(default_factory=dict)
    pseudo_labels: str = ""
    teacher: list = field(default_factory=list)
    distill_weight: float = 0.9
    distill_temperature: float = 1.0
    versions: dict = field(default_factory=dict)  # Filled in by train(); informative only.

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
        for name in ARCH_DEFAULTED_FIELDS:
            if values[name] is None:
                values[name] = spec.train_defaults[name]
        config = TrainConfig(**values)
        config.validate()
        return config

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
        """Raises ValueError naming the first setting out of range (None = the arch default)."""
        for name, (low, high) in INTEGER_BOUNDS.items():
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), low, high)
        for name in BOOLEAN_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise UserError(f"{name} must be true or false. Received: {name}={value!r}")
        if self.learning_rate is not None:
            check_number("learning_rate", self.learning_rate, 0.0, 100.0, low_open=True)
        if self.label_smoothing is not None:
            check_number("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        check_number("ema_momentum", self.ema_momentum, 0.0, 1.0, high_open=True)
        for name, (low, high) in AUGMENT_RANGES.items():
            check_number(name, getattr(self, name), low, high)
        check_number("val_split", self.val_split, 0.0, 1.0, low_open=True, high_open=True)
        check_number("warmup_epochs", self.warmup_epochs, 0.0, 10_000.0)
        if self.run_name is not None:
            check_name(self.run_name)
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise UserError(f"data_dir must be text. Received: data_dir={self.data_dir!r}")
        for name in ("arch", "optimizer", "strategy", "precision", "output_dir", "submissions_dir",
                     "pseudo_labels"):
            if not isinstance(getattr(self, name), str):
                raise UserError(f"{name} must be text. Received: {name}={getattr(self, name)!r}")
        if not isinstance(self.model_options, dict):
            raise UserError(f"model_options must be a mapping of builder options. Received: "
                             f"model_options={self.model_options!r}")
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise UserError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}. Received: "
                             f"lr_schedule={self.lr_schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: "
                             f"optimizer={self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}. Received: "
                             f"precision={self.precision!r}")
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}. Received: "
                             f"strategy={self.strategy!r}")
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
        if not isinstance(self.teacher, list) or not all(
                isinstance(path, str) and path for path in self.teacher):
            raise UserError(f"teacher must be a list of run directories. Received: "
                             f"teacher={self.teacher!r}")
        check_number("distill_weight", self.distill_weight, 0.0, 1.0, low_open=True)
        check_number("distill_temperature", self.distill_temperature, 0.0, 100.0, low_open=True)
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
    def augment_ranges(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in AUGMENT_RANGES}

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
