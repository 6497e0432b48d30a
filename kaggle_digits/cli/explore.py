"""Look at the data before training: sample digits, class balance, missing-value and shape checks.

Examples:
  python scripts/explore.py
  python scripts/explore.py --data data/digit-recognizer --submission submissions/my.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits.cli.common import path_text, path_value, run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Print the data checks (rows, missing values, shapes, class counts) and write "
                    "sample_digits.png (10 examples per digit) and class_distribution.png (train "
                    "labels, and a submission's predicted labels with --submission).")
    parser.add_argument("--data", type=path_text,
                        help="directory with train.csv and test.csv (default: "
                        "data/digit-recognizer/, the Kaggle input directory, else the bundled "
                        "sample)")
    parser.add_argument("--submission", type=path_value,
                        help="a submission CSV whose predicted class "
                        "distribution is drawn beside train's")
    parser.add_argument("--out", type=path_value, default=Path("reports"),
                        help="output directory (default reports/)")
    args = parser.parse_args(argv)
    return run_command(lambda: _explore(args))


def _explore(args: argparse.Namespace) -> int:
    from kaggle_digits.data.explore import explore, prediction_shares, read_submission_labels
    from kaggle_digits.data.load import (
        data_report,
        format_data_report,
        load_competition_data,
        resolve_data_dir,
    )

    data_dir, is_sample = resolve_data_dir(args.data)
    if is_sample:
        print(f"NOTICE: no competition data found; exploring the bundled sample in {data_dir}")
    data = load_competition_data(data_dir)
    predicted = read_submission_labels(args.submission) if args.submission else None
    written = explore(data, args.out, predicted, args.submission.name if args.submission else "")
    print(f"data: {data_dir}")
    print(format_data_report(data_report(data)))
    if predicted is not None:
        print(f"{args.submission} predicted shares: {prediction_shares(predicted)}")
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
