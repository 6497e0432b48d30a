#!/usr/bin/env python
"""One lever, paired: two k-fold runs on the same folds, compared on the rows they both held out.

  python bench/levers.py runs/kfold5-base runs/kfold5-aug15
  python bench/levers.py runs/kfold5-base,runs/kfold5-split1-base \
      runs/kfold5-e30d01,runs/kfold5-split1-e30d01

The runs may be finished or stopped part-way (``train.py --resume`` continues them later): the
comparison uses the folds finished in both, so a lever can be judged after two folds (16,800
rows) instead of five. Prints each run's accuracy on those rows with its 95% interval, McNemar's
exact test on the same rows (rows only one of them gets right, and the p-value), and each run's
training time per fold, so a lever's gain is set against its cost.

Comma-separated runs are a bag (the ``bagged`` recipe's members): finished k-fold runs of any split
seeds, each row scored by the mean of the members' out-of-fold probabilities (every member held
it out once), so two bags are compared on every labelled row, with their total training time. It
also says on how many rows both bags are wrong: the errors no such ensemble fixes. For two runs
or two bags it prints what share of each one's mistakes the other makes too, and on how many rows
they predict different digits: the measure of two families' diversity.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from kaggle_digits.data.load import load_competition_data
from kaggle_digits.data.splits import stratified_folds
from kaggle_digits.ensembles.combine import combine, load_members, retune_with_tta
from kaggle_digits.evaluation.metrics import format_accuracy, mcnemar_exact
from kaggle_digits.evaluation.tta import check_tta
from kaggle_digits.runs.rundir import RunDir


def finished_folds(run: RunDir) -> dict[int, dict]:
    """Fold number -> record, of the folds this run has finished."""
    return {record["fold"]: record for fold in run.folds()
            if (record := fold.read_fold_record()) is not None}


def compare(first: RunDir, second: RunDir) -> dict:
    """The two runs' held-out correctness on the rows of the folds both finished, and times.

    Raises:
        ValueError: not k-fold runs of the same folds and data, or no fold finished in both.
    """
    configs = [run.read_config() for run in (first, second)]
    if any(config.folds < 2 for config in configs) or \
            {(c.folds, c.split_seed) for c in configs} != {(configs[0].folds,
                                                             configs[0].split_seed)}:
        raise ValueError(f"{first} and {second} must be k-fold runs with the same --folds and "
                         f"--split-seed")
    states = [run.read_metrics() if run.finished else run.read_state() or {}
              for run in (first, second)]
    if states[0].get("data_fingerprint") != states[1].get("data_fingerprint"):
        raise ValueError(f"{first} and {second} were trained on different data files")
    # A run left by a version that recorded no data directory (data_dir null) read the default.
    data = load_competition_data(configs[0].with_data_dir().data_dir)
    folds = stratified_folds(data.train_labels, configs[0].folds, configs[0].split_seed)
    done = [finished_folds(first), finished_folds(second)]
    shared = sorted(set(done[0]) & set(done[1]))
    if not shared:
        raise ValueError(f"no fold is finished in both {first} and {second} yet")
    rows = np.concatenate([folds[number - 1][1] for number in shared])
    labels = data.train_labels[rows]
    predicted = [np.concatenate([run.fold(number).load_array("val_probs").argmax(axis=1)
                                 for number in shared]) for run in (first, second)]
    fold_minutes = [[done[i][number]["train_time_s"] / 60 for number in shared]
                    for i in (0, 1)]
    return {"folds": shared, "rows": len(rows), "right": [p == labels for p in predicted],
            "predicted": predicted, "fold_minutes": fold_minutes}


def mistake_overlap(right: list[np.ndarray], predicted: list[np.ndarray]) -> str:
    """What two runs share of their mistakes, and where they disagree: members that err on
    different rows are what an ensemble can use (two runs of one net share most of theirs)."""
    wrong = [~r for r in right]
    both = int((wrong[0] & wrong[1]).sum())
    counts = [int(w.sum()) for w in wrong]
    shares = ", ".join(f"{both / count:.0%} of the {'first' if i == 0 else 'second'}'s"
                       for i, count in enumerate(counts) if count)
    differ = int((predicted[0] != predicted[1]).sum())
    return (f"mistakes: {counts[0]} and {counts[1]}; both wrong on {both} rows"
            + (f" ({shares})" if shares else "") + f"; they predict different digits on "
            f"{differ} rows")


def check_finished_kfold(run: RunDir) -> None:
    """Raises ValueError unless ``run`` is a finished k-fold run (a bag takes only those)."""
    if not run.finished or run.read_config().folds < 2:
        raise ValueError(f"{run} is not a finished k-fold run; a bag takes only those "
                         f"(train.py --resume {run} finishes it)")


def compare_bags(first: list[RunDir], second: list[RunDir], tta: int = 1) -> dict:
    """Two bags of finished k-fold runs, each row scored by its bag's mean out-of-fold
    probability (the ensemble module's mean, as the ``bagged`` recipe scores itself), on every
    labelled row; and each bag's training time in minutes. ``tta`` > 1: the second bag's
    members re-predicted with that many views, as ``ensemble.py --tta`` does.

    Raises:
        ValueError: a member that is not a finished k-fold run, or bags on different data.
    """
    for run in first + second:
        check_finished_kfold(run)
    bags = [load_members([run.path for run in bag], log=lambda _: None) for bag in (first, second)]
    if bags[0][0].metrics["data_fingerprint"] != bags[1][0].metrics["data_fingerprint"] or \
            not np.array_equal(bags[0][0].val_labels, bags[1][0].val_labels):
        raise ValueError("the two bags were not trained on the same data files")
    if tta > 1:
        retune_with_tta(bags[1], tta, log=lambda _: None)
    results = [combine(bag, "mean") for bag in bags]
    minutes = [sum(record["train_time_s"] for run in bag
                   for record in finished_folds(run).values()) / 60 for bag in (first, second)]
    return {"rows": results[0].val_rows,
            "right": [r.val_probs.argmax(axis=1) == r.val_labels for r in results],
            "predicted": [r.val_probs.argmax(axis=1) for r in results],
            "member_accuracies": [[m.val_accuracy for m in bag] for bag in bags],
            "minutes": minutes}


def main_bags(first: list[Path], second: list[Path], tta: int = 1) -> int:
    try:
        result = compare_bags([RunDir(p) for p in first], [RunDir(p) for p in second], tta)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = result["rows"]
    names = [",".join(path.name for path in bag) for bag in (first, second)]
    if tta > 1:
        names[1] += f" with TTA ({tta} views)"
    print(f"bags scored out-of-fold on all {rows:,} labelled rows")
    for name, bag, right, accuracies, minutes in zip(
            names, (first, second), result["right"], result["member_accuracies"],
            result["minutes"]):
        print(f"  {name} ({len(bag)} model{'s' if len(bag) > 1 else ''} a row): "
              f"{format_accuracy(right.mean(), rows)}; "
              f"training {minutes:.0f} min of fits in all")
        for path, accuracy in zip(bag, accuracies):
            print(f"    member {path.name}: {accuracy:.4%}")
    test = mcnemar_exact(*result["right"])
    print(f"  only the first bag right: {test['only_first']}, only the second: "
          f"{test['only_second']}, McNemar exact p = {test['p_value']:.3g}")
    print(f"  {mistake_overlap(result['right'], result['predicted'])}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="the reference k-fold run directory (or a bag: "
                        "finished k-fold runs separated by commas)")
    parser.add_argument("second", help="the run with the lever (or a bag)")
    parser.add_argument("--tta", type=int, default=1, metavar="N",
                        help="re-predict the second run's (or bag's) held-out rows with N "
                             "test-time views (default 1: as saved)")
    args = parser.parse_args(argv)
    try:
        check_tta(args.tta)
    except ValueError as exc:
        parser.error(str(exc))
    bags = [[Path(part) for part in arg.split(",") if part] for arg in (args.first, args.second)]
    if any(len(bag) != 1 for bag in bags) or args.tta > 1:
        return main_bags(*bags, tta=args.tta)
    args.first, args.second = bags[0][0], bags[1][0]
    try:
        result = compare(RunDir(args.first), RunDir(args.second))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = result["rows"]
    print(f"folds finished in both: {result['folds']} ({rows:,} held-out rows)")
    for path, right, minutes in zip((args.first, args.second), result["right"],
                                    result["fold_minutes"]):
        print(f"  {path.name}: {format_accuracy(right.mean(), rows)}; training "
              f"{statistics.median(minutes):.1f} min a fold (median)")
    test = mcnemar_exact(*result["right"])
    print(f"  only {args.first.name} right: {test['only_first']}, only {args.second.name} "
          f"right: {test['only_second']}, McNemar exact p = {test['p_value']:.3g}")
    print(f"  {mistake_overlap(result['right'], result['predicted'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
