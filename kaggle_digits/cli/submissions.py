"""The submission ledger: every Kaggle submission, its run, its validation and its public score.

Examples:
  python scripts/submissions.py            # the ledger as a table
  python scripts/submissions.py --sync     # fill in public scores and statuses from Kaggle
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaggle_digits.cli.common import path_value, run_command
from kaggle_digits.submission.kaggle_api import DEFAULT_COMPETITION
from kaggle_digits.submission.ledger import DEFAULT_LEDGER, SENDING, best_public, gap


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="List the submissions made with submit.py (and, after --sync, those made "
                    "elsewhere): Kaggle ref, time, file, the run or ensemble it came from, "
                    "validation accuracy with its 95% interval, public score, validation minus "
                    "public score, status. Ends with the mean gap and the best public score.")
    parser.add_argument("--sync", action="store_true",
                        help="first read every page of Kaggle's submission list: public scores, "
                             "statuses and error descriptions; resolves submits that were killed "
                             "mid-send (one still sending is left alone); imports submissions "
                             "made outside the toolkit, their origin unknown")
    parser.add_argument("--ledger", type=path_value, default=DEFAULT_LEDGER,
                        help=f"the ledger file (default {DEFAULT_LEDGER})")
    parser.add_argument("--competition", default=DEFAULT_COMPETITION,
                        help=f"competition slug (default {DEFAULT_COMPETITION})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    from kaggle_digits.submission.ledger import Ledger
    from kaggle_digits.submission.submit import kaggle_submissions

    # Kaggle is asked first: a refusal (no credentials, no network) leaves no ledger made.
    listed = kaggle_submissions(args.competition, log=print) if args.sync else None
    with Ledger(args.ledger) as ledger:
        if args.sync:
            counts = ledger.sync(listed, args.competition)
            print(f"synced {len(listed)} Kaggle submission(s): {counts['updated']} updated, "
                  f"{counts['resolved']} interrupted submit(s) resolved, {counts['not_sent']} "
                  f"never reached Kaggle, {counts['imported']} imported"
                  + (f", {counts['in_flight']} still being sent (left alone)"
                     if counts["in_flight"] else ""))
        rows = ledger.rows(args.competition)
    print(format_table(rows))
    print(summary(rows))
    return 0


def _percent(value) -> str:
    return "–" if value is None else f"{value:.4%}"


def format_table(rows: list[dict]) -> str:
    lines = ["| id | ref | submitted (UTC) | file | from | validation (95% CI) | public | "
             "val − public | status |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        interval = ("" if row["val_ci_low"] is None
                    else f" ({row['val_ci_low']:.2%}–{row['val_ci_high']:.2%})")
        difference = gap(row)
        status = "incomplete (killed mid-send; --sync resolves it)" \
            if row["status"] == SENDING else row["status"]
        if row["error_description"]:
            status += f": {row['error_description']}"
        source = row["source"] or row["config_summary"] or "–"
        lines.append(
            f"| {row['id']} | {row['kaggle_ref'] or '–'} | {row['created'][:16]} | "
            f"{Path(row['file']).name} | {source} | {_percent(row['val_accuracy'])}{interval} | "
            f"{_percent(row['public_score'])} | "
            f"{'–' if difference is None else f'{difference * 100:+.2f} points'} | {status} |")
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    gaps = [value for value in map(gap, rows) if value is not None]
    lines = []
    if gaps:
        mean = sum(gaps) / len(gaps)
        verdict = ("validation flatters" if mean > 0 else "the leaderboard is kinder"
                   if mean < 0 else "they agree")
        lines.append(f"mean validation − public over {len(gaps)} scored submission(s): "
                     f"{mean * 100:+.2f} points ({verdict})")
    best = best_public(rows)
    if best is not None:
        origin = best["source"] or best["file"]
        validation = ("no validation figure" if best["val_accuracy"] is None else
                      f"validation {_percent(best['val_accuracy'])}, "
                      f"{gap(best) * 100:+.2f} points from its public score")
        lines.append(f"best public score: {_percent(best['public_score'])} (submission "
                     f"{best['kaggle_ref']}, {Path(best['file']).name}) from {origin}; "
                     f"{validation}")
    if not rows:
        lines.append("no submissions in the ledger yet (submit.py records each one; --sync "
                     "imports those made elsewhere)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
