"""Named ensemble recipes: train the members one after another, then combine them.

Members live in ``runs/recipe-<name>/<member>``, so running a recipe again reuses finished members
and resumes an interrupted one instead of starting over (delete the directory to start afresh).
Members share one validation split (``split_seed``) and differ in their training seed, which is
what makes their errors partly independent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from kaggle_digits.config import TrainConfig
from kaggle_digits.data import competition_files, fingerprint_files, resolve_data_dir
from kaggle_digits.ensemble import combine, load_members, write_ensemble
from kaggle_digits.executor import Job, LocalExecutor
from kaggle_digits.rundir import DataMismatch, RunDir
from kaggle_digits.sweep import StudyRun, make_config

RECIPES: dict[str, tuple[str, list[StudyRun]]] = {
    # As many default improved_cnn runs (~7 min each on 2 CPU cores) as fit in an hour.
    "default": (
        "seven improved_cnn models (default settings, seeds 42 and 1-6) on one split, "
        "probabilities averaged",
        [(f"improved_cnn-s{seed}", "improved_cnn", {"seed": seed})
         for seed in (42, 1, 2, 3, 4, 5, 6)],
    ),
    "quick": (
        "three improved_cnn models of 5 epochs each: a fast check of the whole ensemble path",
        [(f"improved_cnn-e5-s{seed}", "improved_cnn", {"seed": seed, "epochs": 5})
         for seed in (42, 1, 2)],
    ),
}


class RecipeIncomplete(ValueError):
    """Members that failed for reasons of their own; the finished ones are kept for next time."""


# Where outputs go and what was installed do not change what a member learns.
SETTINGS_IGNORED = ("versions", "output_dir", "run_name", "submissions_dir", "data_dir",
                    "tensorboard")


def _changed_settings(run: RunDir, config: TrainConfig, fingerprint: dict[str, str]
                      ) -> list[str]:
    """What in an earlier member differs from what the recipe now asks for: its settings (e.g.
    after an upgrade changed a default) or its data files ("data files", by SHA-256); empty when
    nothing or no earlier run."""
    if not run.exists:
        return []
    saved, wanted = run.read_config().to_dict(), config.resolved().to_dict()
    changed = sorted(key for key in wanted
                     if key not in SETTINGS_IGNORED and saved.get(key) != wanted[key])
    try:
        run.check_data(fingerprint)
    except DataMismatch:
        changed.append("data files")
    except ValueError:
        pass  # No readable record of its data: it is retrained as unfinished anyway.
    return changed


def current_fingerprint(config: TrainConfig) -> dict[str, str]:
    """SHA-256 of the train and test files a member of ``config`` would be trained on now."""
    data_dir, _ = resolve_data_dir(config.data_dir)
    return fingerprint_files(list(competition_files(data_dir)))


def run_recipe(name: str, base: TrainConfig, method: str = "mean",
               out: str | Path | None = None, log: Callable[[str], None] = print,
               executor=None):
    """Train (or reuse, or resume) every member of recipe ``name`` and write the ensemble.

    Members to train go to ``executor`` (default: this process, one after another) as jobs.

    Returns:
        ``(members, result, submission_path, record_path)``.

    Raises:
        RecipeIncomplete: a member failed for a reason of its own (after the others finished).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe: name must be one of {', '.join(RECIPES)}. "
                         f"Received: name={name!r}")
    description, runs = RECIPES[name]
    configs = [(label, make_config(base, arch, overrides)) for label, arch, overrides in runs]
    recipe_dir = Path(base.output_dir) / f"recipe-{name}"
    log(f"recipe {name}: {description}; members in {recipe_dir}")
    fingerprint = current_fingerprint(base)
    run_dirs, jobs, started = [], [], time.perf_counter()
    for index, (label, config) in enumerate(configs, start=1):
        run = RunDir(recipe_dir / label)
        run_dirs.append(run.path)
        where = f"[recipe {name}: member {index}/{len(configs)}]"
        changed = _changed_settings(run, config, fingerprint)
        if changed:
            replaced = (recipe_dir.parent / f"recipe-{name}-replaced"
                        / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}")
            replaced.parent.mkdir(parents=True, exist_ok=True)
            run.path.rename(replaced)
            log(f"{where} {label} was trained with other settings ({', '.join(changed)}); moved "
                f"to {replaced}, training it again")
        if run.finished:
            log(f"{where} {label}: finished earlier, reused")
            continue
        log(f"{where} {label}" + (": resuming" if run.resumable else ""))
        config.output_dir, config.run_name = str(recipe_dir), label
        jobs.append(Job(label, config))
    if jobs:
        executor = executor or LocalExecutor()
        results = executor.run(jobs, log=log, description=f"recipe {name}")
        failed = [result for result in results if result.error]
        if failed:
            raise RecipeIncomplete(
                f"recipe {name}: {len(jobs) - len(failed)} of {len(jobs)} member(s) trained; "
                + "; ".join(f"{r.job.label} failed: {r.error}" for r in failed)
                + ". Run the same command again: finished members are reused")
    members = load_members(run_dirs, log=log)
    result = combine(members, method)
    out = Path(out or Path(base.submissions_dir) / f"recipe-{name}-{method}.csv")
    submission, record = write_ensemble(members, result, out)
    log(f"recipe {name}: {len(members)} members, {time.perf_counter() - started:.0f}s")
    return members, result, submission, record
