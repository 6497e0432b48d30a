"""Regenerate the evaluation report files of finished training runs.

Example:
  python scripts/report.py runs/20261121-221103-improved_cnn
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits import UserError
from kaggle_digits.cli.common import path_text, path_value, run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Rewrite classification_report.txt/.json, confusion_matrix.png, errors.png "
                    "(worst validation mistakes) and learning_curves.png in each run directory, "
                    "from its saved probabilities and the train.csv it was trained on (checked by "
                    "SHA-256).")
    parser.add_argument("run_dirs", nargs="+", type=path_value, metavar="RUN_DIR")
    parser.add_argument("--label-issues", action="store_true",
                        help="also find the rows whose given label is likely wrong (confident "
                             "learning on the run's held-out probabilities, calibrated; best "
                             "from a k-fold run, which scores every row): label_issues.csv and "
                             "label_issues.png in the run directory, shown in its report.html; "
                             "train.py --exclude-rows takes the CSV")
    parser.add_argument("--data", type=path_text, help="the data directory to read train.csv "
                        "from, for runs moved from where they were trained (default: the one "
                        "each run recorded); it must hold the same train.csv, by SHA-256")
    args = parser.parse_args(argv)
    return run_command(lambda: _report(args))


def _report(args: argparse.Namespace) -> int:
    from kaggle_digits.evaluation.reports import regenerate_report  # Loads matplotlib.

    status = 0
    for run_dir in args.run_dirs:
        try:
            if args.label_issues:
                from kaggle_digits.evaluation.label_issues import run_label_issues

                issues, table, gallery = run_label_issues(run_dir, args.data)
                print(f"{run_dir}: {len(issues.rows)} likely label issues among "
                      f"{issues.scored_rows} held-out rows (calibrated at temperature "
                      f"{issues.temperature:.2f}): {table}, {gallery}")
            written = regenerate_report(run_dir, args.data)
        except UserError as exc:  # This run's; the next is still reported.
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        print(f"{run_dir}: wrote {', '.join(path.name for path in written)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
