"""Named ensemble recipes: train the members one after another, then combine them.

Members live in ``runs/recipe-<name>/<member>``, so running a recipe again reuses finished members
and resumes an interrupted one instead of starting over (delete the directory to start afresh).
Members share one validation split (``split_seed``) and differ in their training seed, which is
what makes their errors partly independent.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from kaggle_digits.config import TrainConfig
from kaggle_digits.ensemble import combine, load_members, write_ensemble
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


# Where outputs go and what was installed do not change what a member learns.
SETTINGS_IGNORED = ("versions", "output_dir", "run_name", "submissions_dir", "data_dir",
                    "tensorboard")


def _changed_settings(run_dir: Path, config: TrainConfig) -> list[str]:
    """The settings in which an earlier member's saved config differs from what the recipe
    now asks for (e.g. after an upgrade changed a default); empty when none or no earlier run."""
    if not (run_dir / "config.json").exists():
        return []
    saved, wanted = TrainConfig.load(run_dir).to_dict(), config.resolved().to_dict()
    return sorted(key for key in wanted
                  if key not in SETTINGS_IGNORED and saved.get(key) != wanted[key])


def run_recipe(name: str, base: TrainConfig, method: str = "mean",
               out: str | Path | None = None, log: Callable[[str], None] = print):
    """Train (or reuse, or resume) every member of recipe ``name`` and write the ensemble.

    Returns:
        ``(members, result, submission_path, record_path)``.
    """
    import keras

    from kaggle_digits.training import resume, train

    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    description, runs = RECIPES[name]
    configs = [(label, make_config(base, arch, overrides)) for label, arch, overrides in runs]
    recipe_dir = Path(base.output_dir) / f"recipe-{name}"
    log(f"recipe {name}: {description}; members in {recipe_dir}")
    run_dirs, started, trained = [], time.perf_counter(), 0
    for index, (label, config) in enumerate(configs, start=1):
        run_dir = recipe_dir / label
        run_dirs.append(run_dir)
        elapsed = time.perf_counter() - started
        eta = (f", about {elapsed / trained * (len(configs) - index + 1) / 60:.0f} min left"
               if trained else "")
        changed = _changed_settings(run_dir, config)
        if changed:
            replaced = (recipe_dir.parent / f"recipe-{name}-replaced"
                        / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}")
            replaced.parent.mkdir(parents=True, exist_ok=True)
            run_dir.rename(replaced)
            log(f"[recipe {name}: member {index}/{len(configs)}] {label} was trained with other "
                f"settings ({', '.join(changed)}); moved to {replaced}, training it again")
        if (run_dir / "metrics.json").exists():
            log(f"[recipe {name}: member {index}/{len(configs)}] {label}: finished earlier, reused")
            continue
        log(f"[recipe {name}: member {index}/{len(configs)}] {label}{eta}")
        keras.backend.clear_session()
        if (run_dir / "state.json").exists():
            resume(run_dir, log=log)
        else:
            if run_dir.exists():  # Stopped before its first epoch: nothing worth keeping.
                shutil.rmtree(run_dir)
            config.output_dir, config.run_name = str(recipe_dir), label
            train(config, log=log)
        trained += 1
    members = load_members(run_dirs, log=log)
    result = combine(members, method)
    out = Path(out or Path(base.submissions_dir) / f"recipe-{name}-{method}.csv")
    submission, record = write_ensemble(members, result, out)
    log(f"recipe {name}: {len(members)} members, {time.perf_counter() - started:.0f}s")
    return members, result, submission, record
