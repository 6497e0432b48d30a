#!/usr/bin/env python
"""What each lever of a finished recipe bought, on its validation rows (one change at a time).

  python bench/rounds.py runs/recipe-pseudo

Prints every member's accuracy with its 95% interval, then paired comparisons on the same rows
(McNemar's exact test): the first round's ensemble against the second round's (pseudo-labels,
same member count), each round's ensemble against its best member, the whole ensemble against
its best member and against each round alone, and the mean of the first k members for every k
(what adding members bought). Members are told apart by ``pseudo_label_rows`` in their metrics.

  python bench/rounds.py runs/recipe-pseudo --candidates runs/diversity/*

measures what other runs on the same split would add: each candidate's accuracy, how many rows
it disagrees on with the recipe's members (against how many they disagree on among themselves),
and the recipe's mean with the candidate added, paired against the mean without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from kaggle_digits.ensembles.combine import combine, load_members
from kaggle_digits.evaluation.metrics import format_accuracy, mcnemar_exact
from kaggle_digits.runs.rundir import RunDir


def correct(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs.argmax(axis=1) == labels


def versus(name_a: str, right_a: np.ndarray, name_b: str, right_b: np.ndarray) -> str:
    test = mcnemar_exact(right_a, right_b)
    return (f"{name_a} {format_accuracy(right_a.mean(), len(right_a))} vs {name_b} "
            f"{format_accuracy(right_b.mean(), len(right_b))}: only {name_a} right on "
            f"{test['only_first']}, only {name_b} on {test['only_second']}, McNemar exact "
            f"p = {test['p_value']:.2g}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe_dir", type=Path)
    parser.add_argument("--candidates", nargs="*", type=Path, default=[],
                        help="finished runs on the same split to try as extra members")
    args = parser.parse_args(argv)
    run_dirs = sorted((p for p in args.recipe_dir.iterdir() if RunDir(p).finished),
                      key=lambda p: RunDir(p).read_metrics().get("finished", ""))
    members = load_members(run_dirs, log=print)
    labels = members[0].val_labels
    first = [m for m in members if not m.metrics.get("pseudo_label_rows")]
    second = [m for m in members if m.metrics.get("pseudo_label_rows")]
    print(f"{len(members)} members, {len(labels):,} validation rows")
    for m in members:
        print(f"  {m.name}: {format_accuracy(m.val_accuracy, len(labels))}, "
              f"{m.metrics['train_rows'] + m.metrics.get('pseudo_label_rows', 0):,} training rows "
              f"({m.metrics.get('pseudo_label_rows', 0):,} pseudo-labelled), "
              f"{m.metrics['train_time_s']:.0f} s training")
    groups = {"round 1": first, "round 2": second, "all": members}
    right = {name: correct(combine(group, "mean").val_probs, labels)
             for name, group in groups.items() if group}
    for name, group in groups.items():
        if group:
            best = max(group, key=lambda m: m.val_accuracy)
            accuracies = [m.val_accuracy for m in group]
            print(f"{name}: members median {statistics.median(accuracies):.4%} "
                  f"(range {min(accuracies):.4%}-{max(accuracies):.4%}); "
                  + versus(f"{name} mean", right[name], f"best member {best.name}",
                           correct(best.val_probs, labels)))
    if first and second:
        print("pseudo-labels, same member count: "
              + versus("round 2 mean", right["round 2"], "round 1 mean", right["round 1"]))
        print(versus("all mean", right["all"], "round 2 mean", right["round 2"]))
    errors = [int((~correct(combine(members[:k], "mean").val_probs, labels)).sum())
              for k in range(1, len(members) + 1)]
    print(f"errors of the mean of the first k members, k = 1..{len(members)}: {errors}")
    if args.candidates:
        report_candidates(members, load_members(args.candidates, log=print), labels, right["all"])
    return 0


def disagreements(a, b) -> int:
    return int(np.sum(a.val_probs.argmax(axis=1) != b.val_probs.argmax(axis=1)))


def report_candidates(members, candidates, labels, ensemble_right) -> None:
    """Each candidate's diversity against the members and what adding it to their mean does."""
    within = [disagreements(a, b) for i, a in enumerate(members) for b in members[i + 1:]]
    print(f"members disagree pairwise on {statistics.median(within):.0f} rows (median; "
          f"{min(within)}-{max(within)})")
    for candidate in candidates:
        against = [disagreements(candidate, m) for m in members]
        added = correct(combine([*members, candidate], "mean").val_probs, labels)
        print(f"candidate {candidate.name} ({candidate.config.arch}, "
              f"{candidate.config.model_options}): "
              f"{format_accuracy(candidate.val_accuracy, len(labels))}; disagrees with the "
              f"members on {statistics.median(against):.0f} rows (median); "
              + versus("members + it", added, "members", ensemble_right))
    if len(candidates) > 1:
        added = correct(combine([*members, *candidates], "mean").val_probs, labels)
        print(versus("members + all candidates", added, "members", ensemble_right))


if __name__ == "__main__":
    sys.exit(main())
