"""What every stage of a run shares: its data, loaded and checked, and its context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras

from kaggle_digits import UserError
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.data.load import DigitData, data_report, load_competition_data, resolve_data_dir
from kaggle_digits.training.distill import check_teachers
from kaggle_digits.training.fit import apply_determinism
from kaggle_digits.evaluation.plots import plot_learning_curves
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.data.splits import check_pseudo_labels, stratified_folds, stratified_split

SAMPLE_NOTICE = (
    "NOTICE: no competition data found (data/digit-recognizer/ or /kaggle/input/digit-recognizer/);"
    " training on the small bundled sample in {path}. Its submission is NOT a valid Kaggle "
    "submission. Get the real data with `python scripts/fetch.py`."
)



def load_run_data(config: TrainConfig, log: Callable[[str], None]) -> tuple[DigitData, bool]:
    """The data ``config`` trains on (the bundled sample, said so, when there is none), checked
    against its split and pseudo-labels before anything is written; ``config.data_dir`` is set
    to where it was found. Returns ``(data, is_sample)``."""
    data_dir, is_sample = resolve_data_dir(config.data_dir)
    config.data_dir = str(data_dir)
    if is_sample:
        log(SAMPLE_NOTICE.format(path=data_dir))
    data = load_competition_data(data_dir)
    check_split(config, data)
    check_pseudo_labels(data, config.pseudo_labels)
    check_teachers(config, data.train_labels, data.fingerprint)
    apply_determinism(config)
    return data, is_sample


def check_split(config: TrainConfig, data: DigitData) -> None:
    """Fail on labels that cannot be split as configured, before a run directory exists."""
    try:
        if config.folds > 1:
            stratified_folds(data.train_labels, config.folds, config.split_seed)
        elif not config.full:
            stratified_split(data.train_labels, config.val_split, config.split_seed)
    except ValueError as exc:
        raise UserError(f"{config.data_dir}: train.csv: {exc}") from None


@dataclass
class RunContext:
    """What every stage of one run needs, started or resumed."""

    config: TrainConfig
    data: DigitData
    run: RunDir
    is_sample: bool
    started: float
    log: Callable[[str], None]
    first_model: keras.Model | None = None  # Built before the run dir exists, to fail early.
    callbacks: tuple = ()  # Keras callbacks after each epoch's checkpoint (search, cluster jobs).
    report: dict = field(init=False)  # The data checks, logged and written into metrics.json.

    def __post_init__(self):
        self.report = data_report(self.data)


def run_base_name(config: TrainConfig) -> str:
    """``<timestamp>-<arch>[-kfoldK|-full]``, or the configured name."""
    suffix = f"-kfold{config.folds}" if config.folds > 1 else "-full" if config.full else ""
    return config.run_name or RunDir.timestamped_name(config.arch, suffix)


def member_seed(config: TrainConfig, number: int) -> int:
    """The training seed of member ``number`` (fold ``number`` of a k-fold run; 1 otherwise)."""
    return config.seed + number if config.folds > 1 else config.seed


def plot_history(member: RunDir, title: str) -> None:
    if member.history_path.exists():
        plot_learning_curves(member.history_path, member.report_path("learning_curves"),
                             title=title)
