"""Named ensemble recipes: train the members (in rounds), then combine them.

Members live in ``runs/recipe-<name>/<member>``, so running a recipe again reuses finished members
and resumes an interrupted one instead of starting over (delete the directory to start afresh).
Members share one validation split (``split_seed``) and differ in their training seed, which is
what makes their errors partly independent; a second round may also differ in its training rows
(pseudo-labelled test rows, see :class:`Recipe`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kaggle_digits import UserError
from kaggle_digits.data.load import current_fingerprint
from kaggle_digits.data.splits import encode_pseudo_labels
from kaggle_digits.ensembles.combine import combine, load_members, retune_with_tta, write_ensemble
from kaggle_digits.evaluation.metrics import format_accuracy
from kaggle_digits.evaluation.tta import check_tta
from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.orchestration.executors.jobs import run_job
from kaggle_digits.orchestration.executors.local import LocalExecutor
from kaggle_digits.orchestration.sweep import StudyRun
from kaggle_digits.runs.locks import directory_lock
from kaggle_digits.runs.rundir import RunDir
from kaggle_digits.training.config import TrainConfig
from kaggle_digits.training.kfold import member_jobs


@dataclass(frozen=True)
class Recipe:
    """Members to train, and optionally a second round trained with pseudo-labels.

    The second round's members add to their training rows the test rows on which the first
    round's mean ensemble is at least ``pseudo_label_confidence`` sure, labelled as it predicts
    them (never the validation rows, so their validation scores stay honest). The final
    ensemble combines the members of every round.
    """

    description: str
    members: tuple[StudyRun, ...]
    pseudo_label_members: tuple[StudyRun, ...] = ()
    pseudo_label_confidence: float = 0.8

    @property
    def all_members(self) -> tuple[StudyRun, ...]:
        return tuple(self.members) + tuple(self.pseudo_label_members)


RECIPES: dict[str, Recipe] = {
    # Bagging with honest scores on every labelled row: each k-fold run splits the rows with its
    # own seed, so the 10 members each train on a different 80%; every row's ensemble
    # prediction is the mean of the 2 members that never saw it, scored on all 42,000 rows.
    # `make ensemble` runs it; its members are improved_cnn's defaults, and what it scores and
    # costs is in docs/results.md.
    "bagged": Recipe(
        "2 x 5-fold improved_cnn (its defaults: 30 epochs, dropout 0.1), "
        "split seeds 42 and 1: 10 members, each on a different 80% of the rows; every labelled "
        "row is scored by the 2 that never saw it (out-of-fold accuracy on all rows), the test "
        "rows by all 10",
        tuple((f"improved_cnn-e30-d01-kfold5-split{seed}", "improved_cnn",
               {"folds": 5, "split_seed": seed, "seed": seed, "epochs": 30, "dropout": 0.1})
              for seed in (42, 1)),
    ),
    # Two rounds on one 80/20 split (scored on its 8,400 held-out rows), `make ensemble` until
    # 2026-12-06 under the name "default" (its members live in runs/recipe-default: rename that
    # folder to runs/recipe-pseudo to reuse them). Label smoothing 0.1 keeps the members' top
    # probability near 0.91, so a confident mean is 0.8, not 0.99.
    "pseudo": Recipe(
        "four improved_cnn models (seeds 42, 1-3), then four more (seeds 4-7) that also train on "
        "the test rows the first four are confident about (mean probability >= 0.8), labelled "
        "as they predict them; all eight averaged",
        tuple((f"improved_cnn-s{seed}", "improved_cnn", {"seed": seed})
              for seed in (42, 1, 2, 3)),
        pseudo_label_members=tuple((f"improved_cnn-pseudo-s{seed}", "improved_cnn",
                                    {"seed": seed}) for seed in (4, 5, 6, 7)),
        pseudo_label_confidence=0.8,
    ),
    # Ciresan et al.'s committee idea (docs: kaggle_digits/models/preprocessing.py): identical
    # networks on the digits as given and width-normalized to 20 and 14 pixels, one 5-fold
    # split (every labelled row is scored by the 3 members that never saw it). What it scores
    # and costs is in docs/results.md.
    "widths": Recipe(
        "3 x 5-fold improved_cnn (its defaults) on split 42: the digits as given, and rescaled "
        "inside the model to 20 and to 14 pixels wide (--input-width); every labelled row is "
        "scored by the 3 members that never saw it, the test rows by all 15 models",
        tuple((f"improved_cnn-kfold5-split42-w{width}", "improved_cnn",
               {"folds": 5, "split_seed": 42, "seed": 42, "input_width": width})
              for width in (0, 20, 14)),
    ),
    "quick": Recipe(
        "three improved_cnn models of 5 epochs each: a fast check of the whole ensemble path",
        tuple((f"improved_cnn-e5-s{seed}", "improved_cnn", {"seed": seed, "epochs": 5})
              for seed in (42, 1, 2)),
    ),
}


def check_recipe(name: str, base: TrainConfig, log: Callable[[str], None] = print
                 ) -> list[TrainConfig]:
    """Every member of recipe ``name`` checked as its run would check it (``ensemble --recipe
    NAME --check``), without training or writing; pseudo-label members without the labels
    that only the first round can give them."""
    from kaggle_digits.training.run import check

    recipe = _recipe(name)
    base = base.with_data_dir()
    return check([base.override({"arch": arch, **overrides})
                  for _, arch, overrides in recipe.all_members], log)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        renamed = (" (the recipe once named default is `pseudo`; `make ensemble` runs `bagged`)"
                   if name == "default" else "")
        raise UserError(f"unknown recipe: name must be one of {', '.join(RECIPES)}{renamed}. "
                         f"Received: name={name!r}")
    return RECIPES[name]


class RecipeIncomplete(UserError):
    """Members that failed for reasons of their own; the finished ones are kept for next time."""


def run_recipe(name: str, base: TrainConfig, method: str = "mean",
               out: str | Path | None = None, log: Callable[[str], None] = print,
               executor=None, tta: int = 1):
    """Train (or reuse, or resume) every member of recipe ``name`` and write the ensemble.

    Members to train go to ``executor`` (default: this process, one after another) as jobs; a
    recipe with pseudo-label members trains them after the first round, on that round's
    confident test predictions. ``tta`` > 1 re-predicts every member with that many views
    before the final combination. The recipe's directory is locked for the whole command.

    Returns:
        ``(members, result, submission_path, record_path)``.

    Raises:
        RecipeIncomplete: a member failed for a reason of its own (after the others finished).
        RunInUse: another command is running the same recipe in the same output directory.
    """
    recipe = _recipe(name)
    check_tta(tta)
    base = base.with_data_dir()  # Every member, fold job and assembly reads the same files.
    recipe_dir = Path(base.output_dir) / f"recipe-{name}"
    with directory_lock(recipe_dir):
        return _run_recipe_locked(name, recipe, recipe_dir, base, method, out, log,
                                  executor, tta)


def _run_recipe_locked(name: str, recipe: Recipe, recipe_dir: Path, base: TrainConfig,
                       method: str, out, log, executor, tta: int):
    log(f"recipe {name}: {recipe.description}; members in {recipe_dir}")
    fingerprint = current_fingerprint(base.data_dir)
    started = time.perf_counter()
    executor = executor or LocalExecutor()
    total = len(recipe.all_members)
    run_dirs, trained = _train_round(name, recipe.members, base, recipe_dir, fingerprint,
                                     executor, log, numbers=range(1, len(recipe.members) + 1),
                                     total=total)
    extra = {}
    if recipe.pseudo_label_members:
        pseudo_labels, extra["first_round"] = _pseudo_labels(name, recipe, run_dirs, log)
        second_dirs, second_trained = _train_round(
            name, recipe.pseudo_label_members,
            dataclasses.replace(base, pseudo_labels=pseudo_labels), recipe_dir, fingerprint,
            executor, log, numbers=range(len(recipe.members) + 1, total + 1), total=total)
        run_dirs, trained = run_dirs + second_dirs, trained + second_trained
    members = load_members(run_dirs, log=log)
    if tta > 1:
        retune_with_tta(members, tta, log=log)
        extra["tta"] = tta
    result = combine(members, method)
    out = Path(out or Path(base.submissions_dir) / f"recipe-{name}-{method}.csv")
    # How long this command took, and how many of the members it trained rather than reused.
    extra.update(wall_s=round(time.perf_counter() - started, 1), members_trained=trained)
    submission, record = write_ensemble(members, result, out, extra=extra)
    log(f"recipe {name}: {len(members)} members, {time.perf_counter() - started:.0f}s")
    return members, result, submission, record


def _pseudo_labels(name: str, recipe: Recipe, run_dirs: list[Path],
                   log: Callable[[str], None]) -> tuple[str, dict]:
    """The first round's confident test predictions as ``TrainConfig.pseudo_labels``, and what
    the ensemble record says about them."""
    first_round = combine(load_members(run_dirs, log=log), "mean")
    threshold = recipe.pseudo_label_confidence
    keep = first_round.test_probs.max(axis=1) >= threshold
    summary = {"members": len(run_dirs), "val_accuracy": first_round.val_accuracy,
               "val_rows": first_round.val_rows, "pseudo_label_rows": int(keep.sum()),
               "pseudo_label_confidence": threshold,
               **_precision_on_validation(first_round, threshold)}
    log(f"recipe {name}: first round of {len(run_dirs)} members: {_accuracy_text(first_round)}; "
        f"pseudo-labels for {keep.sum():,} of {len(keep):,} test rows (mean probability >= "
        f"{threshold:g})"
        + (f"; on validation rows that confident, the first round is right on "
           f"{summary['confident_val_precision']:.3%} of {summary['confident_val_rows']:,}"
           if summary.get("confident_val_rows") else ""))
    return encode_pseudo_labels(first_round.test_probs.argmax(axis=1), keep), summary


def _precision_on_validation(result, threshold: float) -> dict:
    """How often pseudo-labels this confident are right, estimated on the validation rows."""
    if result.val_probs is None:
        return {}
    confident = result.val_probs.max(axis=1) >= threshold
    right = result.val_probs.argmax(axis=1)[confident] == result.val_labels[confident]
    return {"confident_val_rows": int(confident.sum()),
            "confident_val_precision": float(right.mean()) if confident.any() else None}


def _accuracy_text(result) -> str:
    if result.val_accuracy is None:
        return "no validation rows"
    return f"validation accuracy {format_accuracy(result.val_accuracy, result.val_rows)}"


def _train_round(name: str, runs: tuple[StudyRun, ...], base: TrainConfig, recipe_dir: Path,
                 fingerprint: dict[str, str], executor, log: Callable[[str], None],
                 numbers: range, total: int) -> tuple[list[Path], int]:
    """Train the members of one round that are not finished yet.

    Returns:
        The round's run directories and how many of them were trained (not reused).
    """
    run_dirs, jobs, kfold_members = [], [], []
    for number, (label, arch, overrides) in zip(numbers, runs):
        config = base.override({"arch": arch, **overrides})
        run = RunDir(recipe_dir / label)
        run_dirs.append(run.path)
        where = f"[recipe {name}: member {number}/{total}]"
        with run.lock():  # A train.py --resume of this member may be running.
            changed = run.changed_settings(config, fingerprint)
            if changed:
                replaced = (recipe_dir.parent / f"recipe-{name}-replaced"
                            / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}")
                replaced.parent.mkdir(parents=True, exist_ok=True)
                run.path.rename(replaced)
                log(f"{where} {label} was trained with other settings ({', '.join(changed)}); "
                    f"moved to {replaced}, training it again")
            if run.finished:
                run.tidy()
                log(f"{where} {label}: finished earlier, reused")
                continue
        log(f"{where} {label}" + (": resuming" if run.resumable else "")
            + (f": {config.folds} folds as separate jobs" if config.folds > 1 else ""))
        config.output_dir, config.run_name = str(recipe_dir), label
        if config.folds > 1:
            kfold_members.append(Job(label, config))
        jobs.extend(member_jobs(label, config, fingerprint))
    if jobs:
        results = executor.run(jobs, log=log, description=f"recipe {name}")
        failed = [result for result in results if result.error]
        if failed:
            raise RecipeIncomplete(
                f"recipe {name}: {len(jobs) - len(failed)} of {len(jobs)} job(s) trained; "
                + "; ".join(f"{r.job.label} failed: {r.error}" for r in failed)
                + ". Run the same command again: finished members and folds are reused")
    _assemble_folds(name, kfold_members, log)
    return run_dirs, len({job.run_dir for job in jobs + kfold_members})


def _assemble_folds(name: str, members: list[Job], log: Callable[[str], None]) -> None:
    """Finish each k-fold member once its folds are all recorded: out-of-fold predictions,
    submission and reports, here (nothing is left to train, so no executor is needed)."""
    for member in members:
        result = run_job(member, log)
        if result.error:
            raise RecipeIncomplete(f"recipe {name}: {member.label} could not be assembled from "
                                   f"its folds: {result.error}")
