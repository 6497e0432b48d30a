"""Hyperparameter search with Optuna over train.py's options, trials run through an executor.

The study minimises the validation error rate; after every epoch a trial reports its validation
loss, and Optuna's median pruner stops trials that are doing worse than the others at the same
epoch (the pruned run still finishes its outputs, with fewer epochs). The study lives in SQLite
under the search's directory (``searches/<name>/study.db``), so running the same command again
continues it. The best trial's config is written as ``best_config.json``, which
``train.py --config`` repeats.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from kaggle_digits import UserError, command_line
from kaggle_digits.data.load import current_fingerprint
from kaggle_digits.orchestration.executors.job import Job
from kaggle_digits.runs.io import write_json_atomic, write_text_atomic
from kaggle_digits.runs.locks import directory_lock
from kaggle_digits.training.config import ALIASES, TrainConfig, check_name, parse_value

KINDS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched option: ``log``/``float``/``int`` between low and high, or a ``choice``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def extremes(self) -> tuple:
        """The values a trial may draw that are most likely to be refused: both ends, or every
        choice (checked before a study starts, so no trial fails on its space)."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            return int(self.low), int(self.high)
        return self.low, self.high

    def suggest(self, trial):
        if self.kind == "log":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))


# Spaces around each architecture's defaults (see --list-archs), wide enough to matter.
SEARCH_SPACES: dict[str, str] = {
    "improved_cnn": "learning_rate=log:1e-3:1e-2 dropout=float:0.1:0.5 "
                    "label_smoothing=float:0:0.2 filters=choice:32-32-32-64|32-64-64-128 "
                    "augment=choice:true|false",
    "simple_cnn": "learning_rate=log:3e-4:3e-3 dropout=float:0:0.5 "
                  "filters=choice:32-64-64|64-128-128 batch_size=choice:32|64|128",
    "mlp": "learning_rate=log:3e-4:3e-3 dropout=float:0.1:0.5 batch_size=choice:64|128|256",
}
DEFAULT_SPACE = "learning_rate=log:3e-4:1e-2 label_smoothing=float:0:0.2"


def parse_space(text: str) -> list[Param]:
    """``"lr=log:1e-4:1e-2 dropout=float:0.1:0.5 epochs=int:5:15 filters=choice:a|b"``.

    Raises:
        ValueError: a malformed item, naming it.
    """
    params = []
    for item in text.split():
        name, _, spec = item.partition("=")
        kind, _, rest = spec.partition(":")
        name = ALIASES.get(name, name)
        if kind not in KINDS or not rest:
            raise UserError(f"search items look like name=log:LOW:HIGH, name=float:LOW:HIGH, "
                             f"name=int:LOW:HIGH or name=choice:A|B. Received: {item!r}")
        if kind == "choice":
            params.append(Param(name, kind, choices=tuple(parse_value(v)
                                                          for v in rest.split("|"))))
            continue
        try:
            low, high = (float(v) for v in rest.split(":"))
        except ValueError:
            raise UserError(f"{name}: {kind} needs LOW:HIGH numbers. Received: {item!r}") \
                from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise UserError(f"{name}: LOW and HIGH must be finite numbers. Received: {item!r}")
        if not low < high or (kind == "log" and low <= 0):
            raise UserError(f"{name}: LOW must be below HIGH (and positive for log). "
                             f"Received: {item!r}")
        params.append(Param(name, kind, low, high))
    return params


def space_for(arch: str, text: str | None = None) -> list[Param]:
    return parse_space(text or SEARCH_SPACES.get(arch, DEFAULT_SPACE))


def trial_config(base: TrainConfig, arch: str, params: dict, output_dir: Path,
                 number: int) -> TrainConfig:
    """The config of trial ``number`` (the number of the trial whose run it continues)."""
    config = base.override({"arch": arch, **params})
    config.output_dir = str(output_dir / "runs")
    config.submissions_dir = str(output_dir / "submissions")
    config.run_name = f"trial-{number:03d}"
    return config


def check_search(arch: str, base: TrainConfig, space: list[Param],
                 log: Callable[[str], None] = print) -> list[TrainConfig]:
    """Every value a trial may draw at the ends of the space (each choice, each bound) checked
    as a run would check it (:func:`kaggle_digits.training.run.check`), before any trial."""
    from kaggle_digits.training.run import check

    base = base.with_data_dir()
    configs = [base.override({"arch": arch})]
    for param in space:
        for value in param.extremes():
            try:
                configs.append(base.override({"arch": arch, param.name: value}))
            except UserError as exc:
                raise UserError(f"search space: {param.name}={value!r} is refused: {exc}") \
                    from None
    try:
        check(configs, log, offline_weights_fail_alone=True)
    except UserError as exc:
        raise UserError(f"search space: {exc}") from None
    return configs


def run_search(name: str, arch: str, base: TrainConfig, trials: int,
               space: list[Param] | None = None, out_root: str | Path = "searches",
               executor=None, seed: int = 42, log: Callable[[str], None] = print
               ) -> tuple[pd.DataFrame, Path]:
    """Run ``trials`` more trials of the study ``name`` (created or continued) and write its
    summary (``summary.md``, ``summary.csv``, ``trials.png``) and ``best_config.json``.

    Trials go to ``executor`` (default: this process, one at a time); on a Ray executor as many run
    at once as ``parallel`` says and are pruned through the driver.
    """
    check_name(name, "name")
    base = base.with_data_dir()  # Every trial reads the same files; the study records them.
    space = space or space_for(arch)
    check_search(arch, base, space, log=lambda line: None)
    search_dir = Path(out_root) / name
    search_dir.mkdir(parents=True, exist_ok=True)
    # One command at a time per study: a second one started at once stops with one line.
    with directory_lock(search_dir):
        return _run_search_locked(name, arch, base, trials, space, search_dir, executor, seed,
                                  log)


def _open_study(name: str, search_dir: Path, seed: int):
    """The study in ``search_dir``, created or loaded, with a sampler seeded by ``seed`` and
    the number of trials it already holds: a repeated command continues with new parameters
    instead of drawing the first trial's again."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(search_dir / 'study.db').resolve()}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                load_if_exists=True, pruner=pruner)
    return optuna.load_study(study_name=name, storage=storage, pruner=pruner,
                             sampler=optuna.samplers.TPESampler(seed=seed + len(study.trials)))


def study_data(base: TrainConfig) -> dict:
    """What a study's trials are judged on: the data files (by SHA-256) and the split."""
    return {"data_fingerprint": current_fingerprint(base.data_dir),
            "split": {"split_seed": base.split_seed, "val_split": base.val_split,
                      "folds": base.folds, "full": base.full}}


def _run_search_locked(name: str, arch: str, base: TrainConfig, trials: int, space: list[Param],
                       search_dir: Path, executor, seed: int, log: Callable[[str], None]
                       ) -> tuple[pd.DataFrame, Path]:
    import optuna

    study = _open_study(name, search_dir, seed)
    recorded_arch = study.user_attrs.get("arch")
    if recorded_arch not in (None, arch):
        raise UserError(f"study {name} searches {recorded_arch}; use another --name. "
                         f"Received: arch={arch!r}")
    judged_on, recorded = study_data(base), study.user_attrs.get("judged_on")
    if recorded not in (None, judged_on):
        changed = [key for key in ("data_fingerprint", "split")
                   if recorded.get(key) != judged_on[key]]
        raise UserError(f"study {name} was run on other {' and '.join(changed) or 'data'} "
                         f"(data files by SHA-256, split seed and validation rows); its scores "
                         f"would not compare: use another --name, or the data and --seed it "
                         f"was run with")
    study.set_user_attr("arch", arch)
    study.set_user_attr("judged_on", judged_on)
    earlier = sum(trial.state.is_finished() for trial in study.trials)
    log(f"search {name}: {arch}, {len(space)} options ({', '.join(p.name for p in space)}); "
        f"{earlier} earlier trial(s), {trials} more; study in {search_dir / 'study.db'}")
    _enqueue_interrupted(study, log)
    if executor is None:  # Its runner loads TensorFlow; the module must not, for --help.
        from kaggle_digits.orchestration.executors.local import LocalExecutor

        executor = LocalExecutor()
    parallel = executor.parallel_jobs(log)
    remaining = trials
    while remaining > 0:
        batch = [study.ask() for _ in range(min(parallel, remaining))]
        remaining -= len(batch)
        jobs = []
        try:
            for trial in batch:
                params = {param.name: param.suggest(trial) for param in space}
                run_number = trial.user_attrs.get("resumes", trial.number)
                config = trial_config(base, arch, params, search_dir, run_number)
                trial.set_user_attr("config", TrainConfig.to_dict(config))
                pruning = executor.pruning_callback(study, trial)
                jobs.append(Job(f"trial {trial.number}", config, (pruning,)))
        except BaseException:  # A space the architecture does not take: no trial left RUNNING.
            for trial in batch:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        try:
            results = executor.run(jobs, log=log, description=f"search {name}")
        except Exception:  # No trial left RUNNING for good by a failure of the command.
            for trial in batch:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        except KeyboardInterrupt:
            for trial in batch:
                # Told, not left RUNNING forever; its run stays resumable for the next command.
                trial.set_user_attr("interrupted", True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log(f"search {name}: trial(s) {', '.join(str(t.number) for t in batch)} "
                f"interrupted; their runs are kept and continue when the same command runs "
                f"again")
            raise
        for trial, result in zip(batch, results):
            _tell(study, trial, result, log)
    table = trials_table(study)
    write_search_summary(study, table, search_dir, name, arch)
    return table, search_dir


def _enqueue_interrupted(study, log) -> None:
    """Queue the trials a Ctrl-C cut short, with their parameters, to continue their runs."""
    continued = {trial.user_attrs.get("continues") for trial in study.trials}  # Queued too.
    for trial in study.trials:
        if trial.user_attrs.get("interrupted") and trial.number not in continued:
            number = trial.user_attrs.get("resumes", trial.number)
            study.enqueue_trial(trial.params, user_attrs={"resumes": number,
                                                          "continues": trial.number})
            log(f"trial {trial.number} was interrupted; its run trial-{number:03d} continues as "
                f"the next trial")


def _tell(study, trial, result, log) -> None:
    import optuna

    if result.error:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log(f"trial {trial.number} failed: {result.error}")
        return
    metrics = result.metrics
    trial.set_user_attr("val_accuracy", metrics["val_accuracy"])
    trial.set_user_attr("epochs_run", metrics["epochs_run"])
    trial.set_user_attr("run_dir", str(result.run_dir))
    pruned = trial.user_attrs.get("pruned_after_epoch")
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        log(f"trial {trial.number} pruned after epoch {pruned} (validation loss worse than the "
            f"median of earlier trials at that epoch)")
        return
    study.tell(trial, 1.0 - metrics["val_accuracy"])
    log(f"trial {trial.number}: validation accuracy {metrics['val_accuracy']:.4%}")


def trials_table(study) -> pd.DataFrame:
    rows = []
    for trial in study.trials:
        rows.append({"trial": trial.number, "state": trial.state.name,
                     "val_accuracy": trial.user_attrs.get("val_accuracy"),
                     "epochs_run": trial.user_attrs.get("epochs_run"),
                     **{f"param:{key}": value for key, value in trial.params.items()}})
    return pd.DataFrame(rows)


def write_search_summary(study, table: pd.DataFrame, search_dir: Path, name: str,
                         arch: str) -> None:
    """summary.csv/.md, trials.png and, once a trial completed, best_config.json."""
    import optuna

    write_text_atomic(search_dir / "summary.csv", table.to_csv(index=False))
    lines = [f"# Search {name} ({arch})", "",
             "| trial | state | val accuracy | epochs | " + " | ".join(
                 c.removeprefix("param:") for c in table.columns if c.startswith("param:")) + " |",
             "|---|---|---|---|" + "---|" * sum(c.startswith("param:") for c in table.columns)]
    for row in table.to_dict("records"):
        accuracy = row["val_accuracy"]
        shown = "–" if accuracy is None or pd.isna(accuracy) else f"{accuracy:.4%}"
        params = " | ".join(_short(row[c]) for c in table.columns if c.startswith("param:"))
        lines.append(f"| {row['trial']} | {row['state']} | {shown} | {row['epochs_run']} | "
                     f"{params} |")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = min(complete, key=lambda t: t.value)
        config = TrainConfig.from_dict(best.user_attrs["config"])
        config.run_name, config.versions = None, {}
        config.output_dir, config.submissions_dir = "runs", "submissions"
        write_json_atomic(search_dir / "best_config.json", dataclasses.asdict(config))
        lines += ["", f"Best: trial {best.number}, validation accuracy "
                      f"{best.user_attrs['val_accuracy']:.4%}; repeat it with "
                      f"`{command_line('train')} --config {search_dir / 'best_config.json'}`."]
    write_text_atomic(search_dir / "summary.md", "\n".join(lines) + "\n")
    _plot_trials(table, search_dir / "trials.png", name)


def _short(value) -> str:
    if isinstance(value, float) and not pd.isna(value):
        return f"{value:.4g}"
    return "–" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _plot_trials(table: pd.DataFrame, out_png: Path, name: str) -> Path:
    from kaggle_digits.evaluation.plots import plt, save_figure

    fig, axis = plt.subplots(figsize=(8, 4))
    colours = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red"}
    for state, group in table.groupby("state"):
        accuracy = pd.to_numeric(group["val_accuracy"], errors="coerce") * 100
        axis.scatter(group["trial"], accuracy, label=state.lower(),
                     color=colours.get(state, "tab:gray"))
    done = table[table["state"] == "COMPLETE"]
    if len(done):
        best = (pd.to_numeric(done["val_accuracy"]) * 100).cummax()
        axis.step(done["trial"], best, where="post", color="tab:green", label="best so far")
    axis.set(xlabel="trial", ylabel="validation accuracy (%)", title=f"Search {name}")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out_png)
