"""Combine finished runs into one submission and show whether the ensemble beats its members.

Examples:
  python scripts/ensemble.py runs/ens-improved_cnn-s*
  python scripts/ensemble.py runs/A runs/B runs/C --method stack --out submissions/stack.csv
  python scripts/ensemble.py runs/*-kfold5 --tta 5
  python scripts/ensemble.py --recipe bagged       # train the members (make ensemble), then combine
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from kaggle_digits import UserError
from kaggle_digits.cli.common import (
    add_executor_arguments,
    add_tracking_arguments,
    check_tracking,
    executor_from_args,
    path_text,
    path_value,
    report_tracking,
    run_command,
)
from kaggle_digits.ensembles.combine import (
    against_best_member,
    combine,
    describe_methods,
    list_methods,
    load_members,
    member_accuracy,
    retune_with_tta,
    write_ensemble,
)
from kaggle_digits.evaluation.metrics import format_accuracy


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Combine the saved validation and test probabilities of finished runs. Runs "
                    "made on different data files or validated on different rows are refused, and "
                    "so are failed, unfinished or damaged runs (unless --skip-missing). Writes "
                    "the submission and a JSON of the members it used, weights and scores "
                    "beside it.",
        epilog=" ".join(f"{name}: {text}" for name, text in describe_methods().items())
               + " Full-data runs (--full) are validated and weighted through a held-out twin "
                 "with the same settings when one is among the members.")
    parser.add_argument("run_dirs", nargs="*", type=path_value, metavar="RUN_DIR")
    parser.add_argument("--recipe", help="train the members of a named recipe first (finished "
                        "members are reused, interrupted ones resumed); see --list-recipes")
    parser.add_argument("--list-recipes", action="store_true", help="list recipes and exit")
    parser.add_argument("--check", action="store_true", help="with --recipe: check every "
                        "member (settings, data files, rows to exclude, each model built once) "
                        "and exit without training or writing anything")
    parser.add_argument("--data", type=path_text,
                        help="data directory for --recipe (default as train.py)")
    parser.add_argument("--exclude-rows", type=path_value, metavar="CSV",
                        help="with --recipe: train "
                        "every member without the train.csv rows in the CSV's 'row' column "
                        "(label_issues.csv from report.py --label-issues); scores still count "
                        "every row")
    parser.add_argument("--method", choices=list_methods(), default="mean", help="default mean")
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out failed, unfinished or damaged runs with a warning "
                             "naming each (default: they are an error)")
    parser.add_argument("--out", type=path_value, help="submission path, ending in .csv (default "
                        "submissions/ensemble-<timestamp>-<method>.csv; with --recipe, "
                        "submissions/recipe-<name>-<method>.csv)")
    parser.add_argument("--tta", type=int, default=1, metavar="N",
                        help="re-predict every member with N test-time views (default 1: use "
                             "the saved probabilities); with --recipe too")
    add_executor_arguments(parser)
    add_tracking_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from kaggle_digits.ensembles.recipe import RECIPES

    if args.list_recipes:
        for name, recipe in RECIPES.items():
            print(f"{name:10s} {recipe.description}")
        return 0
    return run_command(lambda: _ensemble(args),
                       hint="run the same command again to continue the recipe")


def _ensemble(args: argparse.Namespace) -> int:
    if bool(args.recipe) == bool(args.run_dirs):
        raise UserError("give run directories or --recipe NAME (not both)")
    for given, flag in ((args.exclude_rows, "--exclude-rows"), (args.data, "--data"),
                        (args.check, "--check")):
        if given and not args.recipe:
            raise UserError(f"{flag} applies to the members a recipe trains; finished runs were "
                            f"trained as they were and combine as they are (give --recipe NAME)")
    check_tracking(args)
    if args.check:
        from kaggle_digits.ensembles.recipe import check_recipe

        configs = check_recipe(args.recipe, _recipe_base(args.data, args.exclude_rows))
        executor_from_args(args)
        print(f"check passed: recipe {args.recipe}, {len(configs)} members, data "
              f"{configs[0].data_dir}; nothing was trained or written")
        return 0
    if args.recipe:  # Without --out: submissions/recipe-<name>-<method>.csv.
        members, result, submission, record = run_recipe(args.recipe, args.data,
                                                         args.method, args.out,
                                                         executor_from_args(args), args.tta,
                                                         args.exclude_rows)
    else:
        out = args.out or Path("submissions") / (
            f"ensemble-{dt.datetime.now():%Y%m%d-%H%M%S}-{args.method}.csv")
        skipped = []
        members = load_members(args.run_dirs, log=lambda line: print(line, file=sys.stderr),
                               skip_missing=args.skip_missing, skipped=skipped)
        if args.tta > 1:
            retune_with_tta(members, args.tta, log=lambda line: print(line, file=sys.stderr))
        result = combine(members, args.method)
        extra = {"tta": args.tta}
        if skipped:
            extra["skipped"] = [{"run_dir": str(s.path), "reason": s.reason} for s in skipped]
        submission, record = write_ensemble(members, result, out, extra=extra)
    print(f"{'member':48s} {'kind':8s} {'validation accuracy':>20s} {'weight':>7s}")
    for member, weight in zip(members, result.weights):
        accuracy = member_accuracy(member)
        shown = f"{accuracy:.4%}" if accuracy is not None else (
            f"(twin {member.val_accuracy:.4%})" if member.twin else "–")
        shown_weight = "meta" if weight is None else f"{weight:.3f}"
        print(f"{member.name:48s} {member.kind:8s} {shown:>20s} {shown_weight:>7s}")
    best = max((a for a in map(member_accuracy, members) if a is not None), default=None)
    if result.val_accuracy is not None:
        print(f"\nensemble ({args.method}) validation accuracy: "
              f"{format_accuracy(result.val_accuracy, result.val_rows)}"
              + (f"; best member {best:.4%} ({result.val_accuracy - best:+.4%})"
                 if best is not None else ""))
        versus = against_best_member(members, result)
        if versus is not None:
            verdict = ("a real difference" if versus["mcnemar_p"] < 0.05
                       else "not distinguishable from noise")
            print(f"vs best member {versus['member']}: the ensemble alone is right on "
                  f"{versus['ensemble_only_right']} rows, the member alone on "
                  f"{versus['member_only_right']}; McNemar exact p = {versus['mcnemar_p']:.3g} "
                  f"({verdict} at 5%)")
    else:
        print("\nno validation estimate: no member carries validation predictions")
    print(f"weights: {result.weight_source}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"submission: {submission}\nmembers and weights: {record}")
    if any(m.metrics.get("is_sample") for m in members):
        print("NOTE: members were trained on the bundled sample; not a valid Kaggle submission.")
    if args.track:  # Last: the ensemble is written and shown whatever tracking does.
        from kaggle_digits.orchestration.tracking import log_ensemble

        try:
            report_tracking(log_ensemble(record, submission, args.tracking_uri), args)
        except UserError as exc:
            raise UserError(f"the ensemble was written ({submission}) but not tracked: "
                             f"{exc}") from None
    return 0


def run_recipe(name: str, data_dir: str | None, method: str, out: Path | None, executor,
               tta: int, exclude_rows: Path | None = None):
    from kaggle_digits.ensembles.recipe import run_recipe as train_recipe

    base = _recipe_base(data_dir, exclude_rows)
    with executor:
        return train_recipe(name, base, method=method, out=out, executor=executor, tta=tta)


def _recipe_base(data_dir: str | None, exclude_rows: Path | None):
    """The settings every member of a recipe starts from: where the data is, what to leave
    out of training."""
    from kaggle_digits.evaluation.label_issues import read_excluded_rows
    from kaggle_digits.training.config import TrainConfig

    base = TrainConfig(data_dir=data_dir).with_data_dir()
    if exclude_rows:
        base.exclude_rows = read_excluded_rows(exclude_rows, base.data_dir)
    return base


if __name__ == "__main__":
    sys.exit(main())
