"""The run directory: the one contract between training and every later step.

Ensembles, predictions, reports, comparisons, submissions and recipes all read what a run wrote, so
one class owns its file names, its atomic writes, its reads and its lifecycle:

- new: created, nothing trained yet (``config.json`` only);
- in progress: ``state.json`` names the last epoch's checkpoint; resumable;
- failed: a ``FAILED`` marker says why; still resumable while ``state.json`` is there;
- finished: ``metrics.json``, always the last file written, exists.

Exactly one of these holds: ``metrics.json`` is written only once every output it points to is
on disk, so a run that has it is finished whatever else a kill left beside it (a stale marker,
checkpoints), and :meth:`RunDir.tidy` removes those leftovers.

Whoever trains, resumes, reuses or deletes a run directory holds its lock (:meth:`RunDir.lock`,
:mod:`kaggle_digits.runs.locks`). A k-fold run holds one member per fold under ``folds/foldN/``,
each a ``RunDir`` with a lock of its own, so that the folds of one run can train in separate
processes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_digits import UserError, command_line
from kaggle_digits.runs.io import (
    atomic_path,
    load_npy,
    parse_json,
    save_npy_atomic,
    write_json_atomic,
    write_text_atomic,
)
from kaggle_digits.runs.locks import DirectoryLock, RunInUse, directory_lock
from kaggle_digits.training.config import TrainConfig, check_name, fields_with_role

ARRAYS = ("val_probs", "val_labels", "val_indices", "test_probs", "fold_of_row",
          "teacher_targets")
REPORT_FILES = {
    "classification_text": "classification_report.txt",
    "classification_json": "classification_report.json",
    "confusion_matrix": "confusion_matrix.png",
    "errors": "errors.png",
    "learning_curves": "learning_curves.png",
    "label_issues": "label_issues.png",
    "label_issues_table": "label_issues.csv",
    "html": "report.html",
}
_CONFIG, _STATE, _METRICS, _FAILED = "config.json", "state.json", "metrics.json", "FAILED"
_HISTORY, _MODEL, _SUBMISSION, _FOLD_RECORD = "history.csv", "model.keras", "submission.csv", \
    "fold.json"
_LAST_CHECKPOINT, _BEST_CHECKPOINT = "checkpoint-epoch{:03d}.keras", "best-epoch{:03d}.keras"
_CHECKPOINT_GLOBS = ("checkpoint-epoch*.keras", "best-epoch*.keras")


# Where a run reads and writes, how it computes and what it was made with do not change what it
# learns: a finished run that differs only there is the same run.
SETTINGS_IGNORED = fields_with_role("location", "compute", "record")
_FOLD_NAME = re.compile(r"fold([1-9][0-9]{0,3})")


@dataclass(frozen=True)
class SkippedRun:
    """A run directory a command left out, and why."""

    path: Path
    reason: str


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: its directory is marked FAILED and the message says how to resume."""

    def __init__(self, run_dir: Path, epochs_done: int):
        self.run_dir = run_dir
        super().__init__(f"interrupted after {epochs_done} completed epoch(s); the run is saved "
                         f"and marked FAILED until resumed with:\n  {command_line('train')} "
                         f"--resume {run_dir}")


@dataclass(frozen=True)
class FoldModel:
    """Fold ``number`` of a finished k-fold run: its model, and the labelled rows it was
    validated on and so never trained on."""

    number: int
    model_path: Path
    rows: np.ndarray  # Indices into the labelled rows.


class RunStatus(enum.Enum):
    NEW = "new"
    IN_PROGRESS = "in progress"
    FAILED = "failed"
    FINISHED = "finished"


class DataMismatch(UserError):
    """Files that are not the ones a run recorded (by SHA-256)."""


def differing_files(recorded: dict[str, str], current: dict[str, str],
                    names: tuple[str, ...] | None = None) -> list[str]:
    """The file names whose SHA-256 differ between two fingerprints (compared by value; a file
    present in one and absent from the other differs). ``names`` limits the comparison."""
    names = names or tuple(sorted(set(recorded) | set(current)))
    return [name for name in names if recorded.get(name) != current.get(name)]


@dataclass(frozen=True)
class RunDir:
    """One run (or one fold of a k-fold run) on disk."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, root: str | os.PathLike, base: str,
               locks: contextlib.ExitStack | None = None) -> "RunDir":
        """``root/base`` (``base-1``, ``base-2`` ... if taken), never reusing a directory.

        With ``locks``, the new directory's lock is taken before it exists (and released when
        ``locks`` closes), so no other process can resume or delete it in between.
        """
        check_name(base)
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create the output directory ({exc.strerror})",
                          str(root)) from None
        for attempt in range(1000):
            candidate = root / (base if attempt == 0 else f"{base}-{attempt}")
            lock = directory_lock(candidate)
            if locks is not None:
                try:
                    lock.acquire()
                except RunInUse:
                    continue
            try:
                candidate.mkdir()
            except FileExistsError:
                if locks is not None:
                    lock.release()
                continue
            if locks is not None:
                locks.callback(lock.release)
            return cls(candidate)
        raise RuntimeError(f"cannot create a new run directory under {root}")

    @staticmethod
    def timestamped_name(arch: str, suffix: str = "") -> str:
        return f"{dt.datetime.now():%Y%m%d-%H%M%S}-{arch}{suffix}"

    # Lifecycle -------------------------------------------------------------------------------

    def lock(self, wait_s: float = 0.0) -> DirectoryLock:
        """The exclusive lock of this run (``with run.lock(): ...``), waiting up to ``wait_s``
        for another holder.

        Raises:
            RunInUse: another process holds it (on entering the ``with``).
        """
        return directory_lock(self.path, wait_s)

    @property
    def status(self) -> RunStatus:
        """FINISHED once metrics.json exists (whatever a kill left beside it), else FAILED while
        the marker is there, IN_PROGRESS with a resume record, NEW otherwise."""
        if self.finished:
            return RunStatus.FINISHED
        if (self.path / _FAILED).exists():
            return RunStatus.FAILED
        if (self.path / _STATE).exists():
            return RunStatus.IN_PROGRESS
        return RunStatus.NEW

    @property
    def finished(self) -> bool:
        """Whether metrics.json, the last file a run writes, exists."""
        return (self.path / _METRICS).exists()

    @property
    def exists(self) -> bool:
        return (self.path / _CONFIG).is_file()

    @property
    def resumable(self) -> bool:
        return not self.finished and (self.path / _STATE).exists()

    def failure_reason(self) -> str | None:
        """The first line of the FAILED marker, or None when the run has not failed."""
        try:
            lines = (self.path / _FAILED).read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return None
        return lines[0] if lines else "no reason recorded"

    def mark_failed(self, reason: str) -> None:
        """Record why the run stopped; a finished run is left finished (nothing failed that it
        needs)."""
        if not self.finished:
            write_text_atomic(self.path / _FAILED, reason.rstrip("\n") + "\n")

    @contextlib.contextmanager
    def failure_guard(self, part: str = ""):
        """The one guard of everything that trains into this run (a whole run, one fold, the
        folds on an executor): if the block raises, the run is marked FAILED and stays
        resumable while its state record is there. A Ctrl-C is raised again as
        :class:`RunInterrupted`, whose message says how to resume; a run that finished inside
        the block (a kill after metrics.json) stays finished. ``part`` names the part that
        failed (``"fold 2"``)."""
        where = f"{part}: " if part else ""
        try:
            yield
        except KeyboardInterrupt:
            if self.finished:
                self.tidy()
                raise
            self.mark_failed(f"KeyboardInterrupt: {where}interrupted; resume with "
                             f"{command_line('train')} --resume {self}")
            raise RunInterrupted(self.path, self.epochs_done()) from None
        except BaseException as exc:
            self.mark_failed(f"{type(exc).__name__}: {where}{exc}")
            raise

    def tidy(self) -> None:
        """Of a finished run, remove what a kill after metrics.json may have left: checkpoints,
        the resume record and a FAILED marker, the fold members' too."""
        if self.finished:
            for member in [self, *self.folds()]:
                member.remove_resume_files()
            self.clear_failed()

    def clear_failed(self) -> None:
        (self.path / _FAILED).unlink(missing_ok=True)

    def require_finished(self) -> None:
        """Raises ValueError naming why the run cannot be read as finished."""
        if self.status is RunStatus.FAILED:
            raise UserError(f"{self.path}: a failed run ({self.failure_reason()})")
        if self.status is not RunStatus.FINISHED:
            raise UserError(f"{self.path}: not a finished run (no {_METRICS})")

    # Config, state, metrics ------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / _CONFIG

    def write_config(self, config) -> None:
        write_json_atomic(self.config_path, config.to_dict())

    def read_config(self) -> TrainConfig:
        return TrainConfig.load(self.config_path)

    def _read_record(self, name: str, advice: str = "") -> dict | None:
        """A JSON record of this directory, or None when it is not there.

        Raises:
            UserError: a record that cannot be read, naming it (and ``advice``).
        """
        try:
            return parse_json((self.path / name).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: {name} is unreadable ({exc}){advice}") from None

    def read_state(self) -> dict | None:
        """The resume record, or None when there is none (never started, or finished)."""
        return self._read_record(_STATE, "; start the run again")

    def write_state(self, state: dict) -> None:
        write_json_atomic(self.path / _STATE, state)

    @property
    def metrics_path(self) -> Path:
        return self.path / _METRICS

    def read_metrics(self) -> dict:
        try:
            return parse_json(self.metrics_path.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path}: no {_METRICS} (unfinished, or not a run "
                             f"directory)") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: unreadable {_METRICS} ({exc})") from None

    def write_metrics(self, metrics: dict) -> None:
        """The run's last write: from here on it is finished."""
        write_json_atomic(self.path / _METRICS, metrics)

    def changed_settings(self, config: TrainConfig,
                         fingerprint: dict[str, str] | None = None) -> list[str]:
        """What in this run differs from what ``config`` asks for: its settings (e.g. after an
        upgrade changed a default) and, given ``fingerprint``, its data files ("data files", by
        SHA-256); empty when nothing differs or there is no run here yet."""
        if not self.exists:
            return []
        saved, wanted = self.read_config().to_dict(), config.resolved().to_dict()
        changed = sorted(key for key in wanted
                         if key not in SETTINGS_IGNORED and saved.get(key) != wanted[key])
        if fingerprint is not None:
            try:
                self.check_data(fingerprint)
            except DataMismatch:
                changed.append("data files")
            except UserError:
                pass  # No readable record of its data: it is retrained as unfinished anyway.
        return changed

    def check_data(self, current: dict[str, str], names: tuple[str, ...] | None = None,
                   recorded: dict[str, str] | None = None) -> None:
        """Refuse data files that are not the ones this run recorded (metrics, else state).

        Raises:
            DataMismatch: naming the files whose SHA-256 differ.
        """
        if recorded is None:
            record = self.read_metrics() if self.finished else self.read_state() or {}
            recorded = record.get("data_fingerprint") or {}
        differing = differing_files(recorded, current, names)
        if differing:
            raise DataMismatch(f"{self.path}: {', '.join(differing)} is not the file this run was "
                               f"made with (SHA-256 mismatch)")

    # Checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self, model, epochs_done: int, best: bool = False,
                        copy_of: str | None = None) -> str:
        """Save ``model`` as the checkpoint of an epoch, or copy checkpoint ``copy_of`` (the same
        weights: no second serialisation); returns the name a state record keeps."""
        name = (_BEST_CHECKPOINT if best else _LAST_CHECKPOINT).format(epochs_done)
        with atomic_path(self.path / name) as tmp:
            if copy_of:
                shutil.copyfile(self.path / copy_of, tmp)
            else:
                model.save(tmp)
        return name

    def checkpoint(self, state: dict, key: str) -> Path | None:
        """The checkpoint a state record names under ``key``; a named file must exist."""
        name = state.get(key)
        if name is None:
            return None
        path = self.path / name
        if not path.is_file():
            raise UserError(f"{self.path}: {_STATE} names {name}, which is missing; the run "
                             f"directory was changed by hand, start the run again")
        return path

    def remove_checkpoints(self, keep: tuple = ()) -> None:
        for pattern in _CHECKPOINT_GLOBS:
            for path in self.path.glob(pattern):
                if path.name not in keep:
                    path.unlink(missing_ok=True)

    def remove_resume_files(self) -> None:
        """Checkpoints and state of a member whose outputs are all written."""
        self.remove_checkpoints()
        (self.path / _STATE).unlink(missing_ok=True)
        self.array_path("teacher_targets").unlink(missing_ok=True)

    # Model, history, arrays, submission ------------------------------------------------------

    @property
    def model_path(self) -> Path:
        return self.path / _MODEL

    def save_model(self, model) -> Path:
        with atomic_path(self.model_path) as tmp:
            model.save(tmp)
        return self.model_path

    def model_paths(self) -> list[Path]:
        """Its model.keras, or a k-fold run's fold models in fold order.

        Raises:
            ValueError: nothing loadable there.
        """
        if self.model_path.is_file():
            return [self.model_path]
        if self.exists and self.read_config().folds > 1:
            return [fold.model_path for fold in self.fold_models()]
        raise UserError(f"{self.path}: no {_MODEL} (is it a finished run directory or a .keras "
                         f"file?)")

    @property
    def history_path(self) -> Path:
        return self.path / _HISTORY

    def truncate_history(self, epochs: int) -> None:
        """Drop rows of epochs after the checkpoint (a kill can land between the two writes)."""
        if self.history_path.exists():
            lines = self.history_path.read_text().splitlines(keepends=True)
            write_text_atomic(self.history_path, "".join(lines[:epochs + 1]))

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    def report_path(self, kind: str) -> Path:
        return self.path / REPORT_FILES[kind]

    def array_path(self, kind: str) -> Path:
        if kind not in ARRAYS:
            raise ValueError(f"kind must be one of {', '.join(ARRAYS)}. Received: kind={kind!r}")
        return self.path / f"{kind}.npy"

    def has_array(self, kind: str) -> bool:
        return self.array_path(kind).exists()

    def save_array(self, kind: str, array: np.ndarray) -> Path:
        return save_npy_atomic(self.array_path(kind), array)

    def load_array(self, kind: str) -> np.ndarray:
        return load_npy(self.array_path(kind))

    @property
    def submission_path(self) -> Path:
        return self.path / _SUBMISSION

    # k-fold members --------------------------------------------------------------------------

    def fold(self, number: int, create: bool = False) -> "RunDir":
        fold = RunDir(self.path / "folds" / f"fold{number}")
        if create:
            fold.path.mkdir(parents=True, exist_ok=True)
        return fold

    def folds(self) -> list["RunDir"]:
        """The fold members, in fold order; other entries under folds/ (a ``fold1.bak`` copy)
        are not members and are ignored."""
        numbered = [(int(match.group(1)), path) for path in self.path.glob("folds/fold*")
                    if path.is_dir() and (match := _FOLD_NAME.fullmatch(path.name))]
        return [RunDir(path) for _, path in sorted(numbered)]

    def fold_models(self) -> list[FoldModel]:
        """The models of a finished k-fold run by fold number, each with the rows it held out:
        the one map from fold to model and rows that every consumer (distillation, TTA,
        prediction, ensembles, tracking) asks, so that no fold is ever paired with another's
        rows by its position in a list.

        Raises:
            ValueError: not a k-fold run, or one with a fold missing or damaged (named).
        """
        import zipfile

        folds = self.read_config().folds
        if folds < 2:
            raise UserError(f"{self.path}: not a k-fold run (folds={folds})")
        try:
            fold_of_row = self.load_array("fold_of_row")
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.path}: damaged k-fold run (fold_of_row.npy: "
                             f"{getattr(exc, 'strerror', None) or exc})") from None
        stray = sorted(set(np.unique(fold_of_row).tolist()) - set(range(1, folds + 1)))
        if stray:
            raise UserError(f"{self.path}: damaged k-fold run (fold_of_row.npy names fold(s) "
                             f"{stray}, the run has folds 1..{folds})")
        models = []
        for number in range(1, folds + 1):
            model_path = self.fold(number).model_path
            rows = np.flatnonzero(fold_of_row == number)
            problem = ("its model is missing" if not model_path.is_file()
                       else "its model is not a .keras archive" if not zipfile.is_zipfile(
                           model_path)
                       else "no rows are recorded for it" if not len(rows) else None)
            if problem:
                raise UserError(f"{self.path}: damaged k-fold run: fold {number} of {folds} "
                                 f"cannot be used ({problem}: {model_path})")
            models.append(FoldModel(number, model_path, rows))
        return models

    def read_fold_record(self) -> dict | None:
        return self._read_record(_FOLD_RECORD)

    def write_fold_record(self, record: dict) -> None:
        write_json_atomic(self.path / _FOLD_RECORD, record)

    def epochs_done(self) -> int:
        """Completed epochs over the run's members (a k-fold run counts every fold's)."""
        total = 0
        for member in [self, *self.folds()]:
            try:
                total += (member.read_state() or {}).get("epochs_done", 0)
            except UserError:
                pass
        return total
