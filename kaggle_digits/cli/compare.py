"""Compare finished training runs: one table (Markdown and CSV) and a bar chart, best first.

Examples:
  python scripts/compare.py runs/*
  python scripts/compare.py runs/*improved_cnn* --out reports/cnn-runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits.cli.common import path_value, run_command
from kaggle_digits.evaluation.compare import compare_runs, format_markdown, write_comparison


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Table of arch, parameters, validation accuracy and loss, time per epoch and "
                    "train time across run directories, sorted by accuracy; writes "
                    "comparison.md, comparison.csv and comparison.png. Failed, unfinished and "
                    "full-data (unvalidated) runs are listed as skipped.")
    parser.add_argument("run_dirs", nargs="+", type=path_value, metavar="RUN_DIR")
    parser.add_argument("--out", type=path_value, default=Path("reports"),
                        help="output directory (default reports/)")
    args = parser.parse_args(argv)
    return run_command(lambda: _compare(args))


def _compare(args: argparse.Namespace) -> int:
    table, skipped = compare_runs(args.run_dirs)
    for run in skipped:
        print(f"skipped {run.path}: {run.reason}", file=sys.stderr)
    if table.empty:
        print("error: none of the given directories is a finished run with a validation score",
              file=sys.stderr)
        return 2
    written = write_comparison(table, args.out)
    print(format_markdown(table))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
