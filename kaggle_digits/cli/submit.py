"""Check a submission file, then submit it to Kaggle with the official client.

Examples:
  python scripts/submit.py submissions/ensemble-20261121-230000-mean.csv -m "5x improved_cnn"
  python scripts/submit.py submissions/<run>.csv -m "improved_cnn" --wait
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits.cli.common import path_text, path_value, run_command
from kaggle_digits.submission.kaggle_api import DEFAULT_COMPETITION
from kaggle_digits.submission.ledger import DEFAULT_LEDGER


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate FILE (header ImageId,Label, 28,000 rows, ImageId 1..28000, labels "
                    "0-9; and, from the JSON record beside it, that it is unchanged and was "
                    "predicted for the local test.csv), then submit it through the kaggle client. "
                    "Nothing is sent if a check fails. Credentials: ~/.kaggle/kaggle.json, "
                    "KAGGLE_USERNAME/KAGGLE_KEY or KAGGLE_API_TOKEN.",
        epilog="Same as: kaggle competitions submit -c digit-recognizer -f FILE -m MESSAGE, "
               "after checking that a submission is left today. Each submission gets a row in "
               "the ledger (see submissions.py), written before the upload and completed after.")
    parser.add_argument("file", type=path_value, help="submission CSV")
    parser.add_argument("-m", "--message", required=True, help="submission description")
    parser.add_argument("--competition", default=DEFAULT_COMPETITION,
                        help=f"competition slug (default {DEFAULT_COMPETITION})")
    parser.add_argument("--data", type=path_text,
                        help="data directory whose test.csv the file must match "
                        "(default: data/digit-recognizer/ or the Kaggle input directory)")
    parser.add_argument("--no-provenance", action="store_true",
                        help="submit a file that has no record of its origin (a hand-made CSV); "
                             "otherwise the JSON beside FILE must show it is unchanged and was "
                             "predicted for the local test.csv")
    parser.add_argument("--wait", action="store_true", help="poll until Kaggle scores it and "
                        "print the public score")
    parser.add_argument("--poll-every", type=float, default=10.0, metavar="S",
                        help="seconds between polls with --wait (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="give up waiting after S seconds (default 600)")
    parser.add_argument("--ledger", type=path_value, default=DEFAULT_LEDGER,
                        help=f"the submission ledger (default {DEFAULT_LEDGER})")
    args = parser.parse_args(argv)
    return run_command(lambda: _submit(args))


def _submit(args: argparse.Namespace) -> int:
    from kaggle_digits.submission.submit import submit

    outcome = submit(args.file, args.message, args.competition, data_dir=args.data,
                     wait=args.wait, poll_every_s=args.poll_every, timeout_s=args.timeout,
                     check_origin=not args.no_provenance, ledger_path=args.ledger)
    if outcome.public_score is not None:
        print(f"public score: {outcome.public_score}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
