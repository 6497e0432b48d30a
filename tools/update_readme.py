#!/usr/bin/env python
"""Regenerate the README sections that come from the code (architecture defaults, recipes).

  python tools/update_readme.py          # rewrite README.md
  python tools/update_readme.py --check  # exit 1 if README.md is stale
"""

import argparse
import sys
from pathlib import Path

from kaggle_digits.docs import render
from kaggle_digits.io_utils import write_text_atomic

README = Path(__file__).resolve().parent.parent / "README.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether it is stale")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        print("README.md is up to date" if fresh == current else "README.md is stale: run "
              "python tools/update_readme.py")
        return 0 if fresh == current else 1
    write_text_atomic(README, fresh)
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
