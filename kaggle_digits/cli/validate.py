"""Check a submission CSV before spending one of the day's Kaggle submissions on it.

Examples:
  python scripts/validate.py submissions/20261121-203000-improved_cnn.csv
  python scripts/validate.py my.csv --data data/digit-recognizer
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits import UserError
from kaggle_digits.cli.common import path_text, path_value, run_command
from kaggle_digits.data.load import (
    COMPETITION_TEST_ROWS,
    find_csv,
    read_digits_csv,
    resolve_data_dir,
)
from kaggle_digits.submission.files import verdict


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Validate a submission: header ImageId,Label; ImageId 1..N in order; labels "
                    "0-9; as many rows as the test file and as the competition's "
                    f"{COMPETITION_TEST_ROWS:,}. Exit code 0 only if Kaggle will accept it.")
    parser.add_argument("file", type=path_value, help="submission CSV to check")
    parser.add_argument("--data", type=path_text,
                        help="directory with the test.csv it was made for (default: "
                        "data/digit-recognizer/, the Kaggle input directory, else the bundled "
                        "sample)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: _validate(args))


def _validate(args: argparse.Namespace) -> int:
    data_dir, is_sample = resolve_data_dir(args.data)
    test_path = find_csv(data_dir, "test")
    if args.data is not None and not Path(args.data).is_dir():
        raise UserError(f"--data {args.data}: not a directory (give the folder whose test.csv "
                        f"the submission was predicted for, or leave --data out)")
    test_rows = None
    if test_path is not None:
        test_rows = len(read_digits_csv(test_path, labelled=False)[0])
        print(f"test file: {test_path} ({test_rows} rows"
              f"{', the bundled sample: no competition data found' if is_sample else ''})")
    else:
        print("test file: none found; checking against the competition's row count only")
    ok, lines = verdict(args.file, test_rows)
    print("\n".join(lines))
    print(f"verdict: {'VALID, ready to submit' if ok else 'NOT VALID, do not submit'}: {args.file}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
