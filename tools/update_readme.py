#!/usr/bin/env python
"""Regenerate BENCHMARKS.md from bench/results/, and the doc sections that come from the code and
the results (architecture defaults, recipes, targets, decisions) in README.md and docs/*.md.

  python tools/update_readme.py          # rewrite the files that are stale
  python tools/update_readme.py --check  # exit 1 if any is stale
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits.cli.common import run_command
from kaggle_digits.orchestration.docs import render_all
from kaggle_digits.runs.io import write_text_atomic


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether they are stale")
    args = parser.parse_args(argv)
    return run_command(lambda: _update(args.check))


def _update(check: bool) -> int:
    stale = {path: text for path, text in render_all().items() if path.read_text() != text}
    if check:
        print("stale: " + ", ".join(map(str, stale)) + "; run python tools/update_readme.py"
              if stale else "README.md, docs/ and BENCHMARKS.md are up to date")
        return 1 if stale else 0
    for path, text in stale.items():
        write_text_atomic(path, text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
