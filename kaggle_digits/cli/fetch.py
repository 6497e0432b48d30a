"""Download the Digit Recognizer bundle with the official kaggle client and unpack it.

Examples:
  python scripts/fetch.py                                   # needs Kaggle credentials
  python scripts/fetch.py --from-zip ../shared/kaggle/digit-recognizer.zip
  python scripts/fetch.py --force                           # download again
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits.cli.common import path_value, run_command
from kaggle_digits.data.fetch import DEFAULT_COMPETITION, fetch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Get the competition files (train.csv, test.csv, sample_submission.csv) into "
                    "--dest through the Kaggle API, or from a zip downloaded by hand. The archive "
                    "is verified (CRC, safe paths, expected files) before anything is moved in; "
                    "with the files already present nothing happens unless --force.",
        epilog="Credentials: ~/.kaggle/kaggle.json (chmod 600), or KAGGLE_USERNAME and KAGGLE_KEY, "
               "or KAGGLE_API_TOKEN. Accept the competition rules on kaggle.com first.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--competition", default=DEFAULT_COMPETITION,
                        help=f"competition slug (default {DEFAULT_COMPETITION})")
    parser.add_argument("--dest", type=path_value, default=Path("data") / "digit-recognizer",
                        help="directory to unpack into (default data/digit-recognizer)")
    parser.add_argument("--force", action="store_true", help="fetch even if the files are present")
    parser.add_argument("--from-zip", type=path_value, metavar="PATH",
                        help="use this bundle instead of downloading")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: _fetch(args), interrupted="interrupted; nothing was unpacked")


def _fetch(args: argparse.Namespace) -> int:
    result = fetch(args.competition, args.dest, force=args.force, from_zip=args.from_zip)
    if result.skipped:
        print(f"{result.dest} already holds {', '.join(result.files)}; nothing to do "
              f"(use --force to fetch again)")
    else:
        print(f"unpacked {', '.join(result.files)} from {result.source} into {result.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
