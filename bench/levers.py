#!/usr/bin/env python
"""One lever, paired: two k-fold runs on the same folds, compared on the rows they both held out.

  python bench/levers.py runs/kfold5-base runs/kfold5-aug15

The runs may be finished or stopped part-way (``train.py --resume`` continues them later): the
comparison uses the folds finished in both, so a lever can be judged after two folds (16,800
rows) instead of five. Prints each run's accuracy on those rows with its 95% interval, McNemar's
exact test on the same rows (rows only one of them gets right, and the p-value), and each run's
training time per fold, so a lever's gain is set against its cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from kaggle_digits.data import load_competition_data
from kaggle_digits.evaluation import format_accuracy, mcnemar_exact
from kaggle_digits.rundir import RunDir
from kaggle_digits.splits import stratified_folds


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
    data = load_competition_data(configs[0].data_dir)
    folds = stratified_folds(data.train_labels, configs[0].folds, configs[0].split_seed)
    done = [finished_folds(first), finished_folds(second)]
    shared = sorted(set(done[0]) & set(done[1]))
    if not shared:
        raise ValueError(f"no fold is finished in both {first} and {second} yet")
    rows = np.concatenate([folds[number - 1][1] for number in shared])
    labels = data.train_labels[rows]
    right = [np.concatenate([run.fold(number).load_array("val_probs").argmax(axis=1)
                             for number in shared]) == labels for run in (first, second)]
    fold_minutes = [[done[i][number]["train_time_s"] / 60 for number in shared]
                    for i in (0, 1)]
    return {"folds": shared, "rows": len(rows), "right": right, "fold_minutes": fold_minutes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="the reference k-fold run directory")
    parser.add_argument("second", type=Path, help="the run with the lever")
    args = parser.parse_args(argv)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
