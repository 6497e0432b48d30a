"""Combine finished runs into one submission, scored honestly on their shared validation rows.

Members must come from the same data files (SHA-256 fingerprints) and, when they carry validation
predictions, from the same validation rows (the hash of their validation row indices): otherwise the
combined validation figure would mix rows some members trained on. Full-data runs carry no
validation predictions; a held-out run with the same training settings (its "twin") stands in for
them in the validation estimate and lends them its weight.

``weighted`` and ``stack`` learn from the validation rows, so their reported accuracy comes from
cross-fitting: each fifth of the rows is scored by weights or a meta-model fitted on the other
four fifths, never on the rows being scored. The final weights/meta-model for the test rows are fit
on all validation rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kaggle_digits import Registry, UserError
from kaggle_digits.evaluation.metrics import accuracy_interval, mcnemar_exact
from kaggle_digits.runs.rundir import DataMismatch, RunDir, SkippedRun, differing_files
from kaggle_digits.submission.files import write_submission_with_record
from kaggle_digits.training.config import TrainConfig, fields_with_role

CROSS_FIT_FOLDS = 5
# Settings that make two runs the same model up to the rows they were trained on and for how
# long: everything a run learns from (a new field of that role joins by default).
TWIN_FIELDS = fields_with_role("learns")


class EnsembleError(UserError):
    """Runs that cannot be combined, with the reason."""


@dataclass
class Member:
    run_dir: Path
    kind: str
    config: TrainConfig
    metrics: dict
    test_probs: np.ndarray
    val_probs: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    twin: "Member | None" = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def validation_source(self) -> "Member | None":
        """The member whose validation predictions speak for this one (itself, or a twin)."""
        return self if self.val_probs is not None else self.twin

    @property
    def val_accuracy(self) -> float | None:
        source = self.validation_source
        return None if source is None else float(source.metrics["val_accuracy"])


def load_member(run_dir: str | os.PathLike) -> Member:
    """A finished run's probabilities and records.

    Raises:
        EnsembleError: failed, unfinished, damaged (a file missing or unreadable), or not a run
            directory.
    """
    run = RunDir(run_dir)
    try:
        run.require_finished()
        metrics = run.read_metrics()
        config = run.read_config()
        kind = metrics.get("kind", "holdout")
        member = Member(run.path, kind, config, metrics, _array(run, "test_probs"))
        if kind == "kfold":
            run.fold_models()  # Every fold there, by number (else refused, naming the fold).
        if kind != "full":
            member.val_probs = _array(run, "val_probs")
            member.val_labels = _array(run, "val_labels")
            if "data_fingerprint" not in metrics or not isinstance(metrics.get("split"), dict):
                raise UserError(f"{run}: damaged run ({run.metrics_path.name} lacks its data "
                                 f"or split record)")
    except UserError as exc:
        raise EnsembleError(str(exc)) from None
    return member


def _array(run: RunDir, kind: str) -> np.ndarray:
    try:
        return run.load_array(kind)
    except FileNotFoundError:
        raise UserError(f"{run}: damaged run ({run.array_path(kind).name} is missing)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{run}: damaged run ({run.array_path(kind).name} is unreadable: "
                         f"{exc})") from None


def load_members(run_dirs, log: Callable[[str], None] = print, skip_missing: bool = False,
                 skipped: list | None = None) -> list[Member]:
    """Load runs and check they can be combined.

    A run that cannot be loaded (failed, unfinished, damaged) is an error, since an ensemble of
    fewer members than asked for would pass silently for the one asked for; with
    ``skip_missing`` it is left out with a warning naming it (and added to ``skipped``).

    Raises:
        EnsembleError: a run given twice, a run that cannot be loaded (without
            ``skip_missing``), none left, or members that cannot be combined.
    """
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        resolved = Path(run_dir).resolve()
        if resolved in seen:
            raise EnsembleError(f"{run_dir} is given twice (also as {seen[resolved]}); each run "
                                f"counts once")
        seen[resolved] = Path(run_dir)
    members, problems = [], []
    for run_dir in run_dirs:
        try:
            members.append(load_member(run_dir))
        except EnsembleError as exc:
            problems.append(SkippedRun(Path(run_dir), str(exc)))
    if problems and not skip_missing:
        raise EnsembleError(f"{len(problems)} of {len(seen)} member(s) cannot be used: "
                            + "; ".join(problem.reason for problem in problems)
                            + ". Finish or remove them (or leave them out with --skip-missing)")
    for problem in problems:
        log(f"warning: leaving out {problem.reason}")
    if skipped is not None:
        skipped.extend(problems)
    if not members:
        raise EnsembleError("no finished runs to combine")
    check_compatible(members)
    match_twins(members)
    return members


def check_compatible(members: list[Member]) -> None:
    """Refuse members made on different data files or validated on different rows."""
    reference = members[0]
    for member in members[1:]:
        differing = differing_files(member.metrics["data_fingerprint"],
                                    reference.metrics["data_fingerprint"])
        if differing:
            raise EnsembleError(
                f"{member.name} and {reference.name} were made on different data "
                f"({', '.join(differing)} differ by SHA-256); train them on the same files")
    validated = [m for m in members if m.val_probs is not None]
    for member in validated[1:]:
        if member.metrics["split"]["val_indices_sha256"] != \
                validated[0].metrics["split"]["val_indices_sha256"]:
            raise EnsembleError(
                f"{member.name} and {validated[0].name} were validated on different rows "
                f"({_split_words(member)} vs {_split_words(validated[0])}); their combined "
                f"validation score would be meaningless. Use the same --split-seed, --val-split "
                f"and --folds for every member")


def _split_words(member: Member) -> str:
    split = member.metrics["split"]
    if member.kind == "kfold":
        return f"{split['folds']}-fold, split seed {split['seed']}"
    return f"val split {split['val_split']}, split seed {split['seed']}"


def twin_key(config: TrainConfig) -> tuple:
    values = config.to_dict()
    return tuple(json.dumps(values[name], sort_keys=True) for name in TWIN_FIELDS)


def match_twins(members: list[Member]) -> None:
    """Pair each full-data member with a held-out member trained with the same settings."""
    validated = [m for m in members if m.val_probs is not None]
    for member in members:
        if member.kind != "full":
            continue
        member.twin = next((m for m in validated if twin_key(m.config) == twin_key(member.config)),
                           None)


@dataclass
class EnsembleResult:
    method: str
    test_probs: np.ndarray
    weights: list[float | None]
    val_accuracy: float | None
    val_rows: int
    weight_source: str
    notes: list[str]
    val_probs: np.ndarray | None = None  # Held-out (cross-fitted) probabilities, for tests.
    val_labels: np.ndarray | None = None


@dataclass(frozen=True)
class Stacks:
    """What a combiner sees: every member's test probabilities, and the validation
    probabilities of the members that have them (``scored``: themselves or a twin)."""

    members: list[Member]
    scored: list[Member]
    test: np.ndarray  # (members, test rows, classes)
    val: np.ndarray | None  # (scored members, validation rows, classes)
    labels: np.ndarray | None


@dataclass(frozen=True)
class Combined:
    test_probs: np.ndarray
    val_probs: np.ndarray | None  # Never from a combiner fitted on the rows it scores.
    weights: np.ndarray | None  # One per member; None when there is no single weight.
    source: str  # Where the weights come from, in words.


# ``combiner(stacks) -> Combined`` by ensemble method name (``--method``).
_METHODS: Registry = Registry("ensemble method", "method")
register_method = _METHODS.register


def list_methods() -> list[str]:
    return list(_METHODS)


def describe_methods() -> dict[str, str]:
    """Each method's combiner docstring on one line: what ``--help`` and the docs say of it."""
    return {name: " ".join((combiner.__doc__ or "").split()) for name, combiner in
            _METHODS.items()}


def combine(members: list[Member], method: str = "mean") -> EnsembleResult:
    """The ensemble's test probabilities and its honest validation accuracy."""
    try:
        combiner = _METHODS.lookup(method)
    except UserError as exc:
        raise EnsembleError(str(exc)) from None
    notes = []
    for member in members:
        if member.kind == "full":
            notes.append(f"{member.name}: full-data run; " + (
                f"validated through its held-out twin {member.twin.name}" if member.twin else
                "no held-out twin among the members, so it counts with equal weight and stays "
                "out of the validation estimate"))
    scored = [m for m in members if m.validation_source is not None]
    stacks = Stacks(members, scored, np.stack([m.test_probs for m in members]),
                    np.stack([m.validation_source.val_probs for m in scored]) if scored else None,
                    scored[0].validation_source.val_labels if scored else None)
    combined = combiner(stacks)
    weights = combined.weights
    shares = ([None] * len(members) if weights is None
              else [float(w) for w in weights / weights.sum()])
    labels = stacks.labels
    val_accuracy = (float(np.mean(combined.val_probs.argmax(axis=1) == labels))
                    if combined.val_probs is not None else None)
    return EnsembleResult(method, combined.test_probs, shares, val_accuracy,
                          0 if labels is None else len(labels), combined.source, notes,
                          combined.val_probs, labels)


@register_method("mean")
def _mean(stacks: Stacks) -> Combined:
    """The members' probabilities averaged with equal weights: bagging's combiner (Breiman
    1996, "Bagging Predictors"), and the one the recipes use."""
    return _equal_weights(stacks, _weighted_mean)


@register_method("vote")
def _plurality_vote(stacks: Stacks) -> Combined:
    """Each member's top class is one vote, ties broken by the mean probability."""
    return _equal_weights(stacks, _vote)


def _equal_weights(stacks: Stacks, combine_fn) -> Combined:
    def equally(stack: np.ndarray) -> np.ndarray:
        return combine_fn(stack, np.ones(len(stack)))
    return Combined(equally(stacks.test), None if stacks.val is None else equally(stacks.val),
                    np.ones(len(stacks.members)), "equal weights")


@register_method("weighted")
def _inverse_error(stacks: Stacks) -> Combined:
    """A weighted mean, each member weighted by the inverse of its validation error rate (or
    its held-out twin's); scored by cross-fitting, so no row is scored by weights fitted on
    it."""
    members = stacks.members
    weights = np.array([_inverse_error_weight(m.val_accuracy) if m.validation_source else
                        np.nan for m in members])
    if len(stacks.scored) < len(members):
        # Members without a validation score get the mean weight of those with one.
        weights[np.isnan(weights)] = np.nanmean(weights) if stacks.scored else 1.0
    return Combined(_weighted_mean(stacks.test, weights),
                    _cross_fit(stacks.val, stacks.labels, _fit_inverse_error, _apply_weights),
                    weights, "inverse validation error rate of each member (or of its held-out "
                             "twin); members without one get the mean weight")


@register_method("stack")
def _stacked(stacks: Stacks) -> Combined:
    """Stacked generalization (Wolpert 1992): a logistic-regression meta-model on the members'
    validation log-probabilities, scored by cross-fitting."""
    unscored = [m for m in stacks.members if m.validation_source is None]
    if unscored:
        raise EnsembleError(f"stack needs validation predictions for every member; "
                            f"{', '.join(m.name for m in unscored)} has none (a full-data run "
                            f"without a held-out twin)")
    meta = _fit_stacker(stacks.val, stacks.labels)
    return Combined(meta.predict_proba(_stack_features(stacks.test)),
                    _cross_fit(stacks.val, stacks.labels, _fit_stacker,
                               lambda model, probs: model.predict_proba(_stack_features(probs))),
                    None,  # The meta-model weighs each member per class; no single weight.
                    "logistic-regression meta-model on the members' validation probabilities")


def against_best_member(members: list[Member], result: EnsembleResult) -> dict | None:
    """The ensemble against its best validated member on the same rows: both accuracies with
    95% intervals and McNemar's exact test (is the difference more than noise?)."""
    validated = [m for m in members if m.val_probs is not None]
    if result.val_probs is None or not validated:
        return None
    best = max(validated, key=lambda m: m.metrics["val_accuracy"])
    labels = result.val_labels
    test = mcnemar_exact(result.val_probs.argmax(axis=1) == labels,
                         best.val_probs.argmax(axis=1) == labels)
    rows = len(labels)
    return {"member": best.name, "member_accuracy": member_accuracy(best),
            "member_ci95": list(accuracy_interval(round(member_accuracy(best) * rows), rows)),
            "ensemble_accuracy": result.val_accuracy,
            "ensemble_ci95": list(accuracy_interval(round(result.val_accuracy * rows), rows)),
            "rows": rows, "ensemble_only_right": test["only_first"],
            "member_only_right": test["only_second"], "mcnemar_p": test["p_value"]}


def _weighted_mean(stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.tensordot(weights / weights.sum(), stack, axes=1)


def _vote(stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Vote shares per class; ties broken by the mean probability (a tiny added term)."""
    votes = np.zeros(stack.shape[1:])
    winners = stack.argmax(axis=2)
    for member, weight in zip(winners, weights):
        votes[np.arange(len(member)), member] += weight
    return votes / weights.sum() + 1e-6 * _weighted_mean(stack, weights)


def _inverse_error_weight(accuracy: float) -> float:
    return 1.0 / max(1.0 - accuracy, 1e-4)


def _fit_inverse_error(stack: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([_inverse_error_weight(np.mean(probs.argmax(axis=1) == labels))
                     for probs in stack])


def _apply_weights(weights: np.ndarray, stack: np.ndarray) -> np.ndarray:
    return _weighted_mean(stack, weights)


def _stack_features(stack: np.ndarray) -> np.ndarray:
    """Members' log-probabilities side by side: (rows, members * 10)."""
    return np.log(np.clip(stack, 1e-7, 1.0)).transpose(1, 0, 2).reshape(stack.shape[1], -1)


def _fit_stacker(stack: np.ndarray, labels: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000).fit(_stack_features(stack), labels)


def _cross_fit(stack: np.ndarray, labels: np.ndarray, fit, apply) -> np.ndarray:
    """Predictions for every validation row from a combiner fitted without that row."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(CROSS_FIT_FOLDS, int(np.bincount(labels)[np.bincount(labels) > 0].min()))
    if folds < 2:
        raise EnsembleError("too few validation rows per digit to fit weights or a meta-model "
                            "without scoring it on its own rows; use --method mean")
    out = np.zeros(stack.shape[1:])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for fit_rows, score_rows in splitter.split(np.zeros(len(labels)), labels):
        combiner = fit(stack[:, fit_rows], labels[fit_rows])
        out[score_rows] = apply(combiner, stack[:, score_rows])
    return out


def member_accuracy(member: Member) -> float | None:
    if member.val_probs is None:
        return None
    return float(np.mean(member.val_probs.argmax(axis=1) == member.val_labels))


def write_ensemble(members: list[Member], result: EnsembleResult, out_csv: str | os.PathLike,
                   extra: dict | None = None) -> tuple[Path, Path]:
    """The submission and, beside it, a JSON of members, weights and scores (and ``extra``).

    Raises:
        SubmissionError: ``out_csv`` does not end in .csv (its record would overwrite it).
    """
    record = {
        "method": result.method,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "val_accuracy": result.val_accuracy,
        "val_rows": result.val_rows,
        "against_best_member": against_best_member(members, result),
        "weight_source": result.weight_source,
        "members": [{"run_dir": str(m.run_dir), "kind": m.kind, "arch": m.config.arch,
                     "val_accuracy": member_accuracy(m),
                     "twin": str(m.twin.run_dir) if m.twin else None, "weight": w}
                    for m, w in zip(members, result.weights)],
        "notes": result.notes,
        "data_fingerprint": members[0].metrics["data_fingerprint"],
        "is_sample": any(m.metrics.get("is_sample") for m in members),
        **(extra or {}),
    }
    return write_submission_with_record(result.test_probs.argmax(axis=1), out_csv, record,
                                        expected_rows=len(result.test_probs))


def retune_with_tta(members: list[Member], tta: int, log: Callable[[str], None] = print) -> None:
    """Replace each member's probabilities by TTA predictions of its saved models.

    Raises:
        EnsembleError: the members' data directory no longer holds the files they were made on.
    """
    from kaggle_digits.data.load import load_competition_data
    from kaggle_digits.evaluation.predict import rescore_with_tta

    data_dir = members[0].config.with_data_dir().data_dir  # Saved configs once held None.
    data = load_competition_data(data_dir)
    try:
        RunDir(members[0].run_dir).check_data(data.fingerprint)
    except DataMismatch:
        raise EnsembleError(f"{data_dir} no longer holds the files the members were trained on "
                            f"(SHA-256 mismatch); cannot re-predict with TTA") from None
    for number, member in enumerate(members, start=1):
        log(f"TTA {tta} views: member {number}/{len(members)} {member.name}")
        val_probs, member.test_probs = rescore_with_tta(RunDir(member.run_dir), data, tta)
        if member.val_probs is not None:
            member.val_probs = val_probs
