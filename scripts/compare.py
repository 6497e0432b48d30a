#!/usr/bin/env python
"""Compare finished training runs: one table (Markdown and CSV) and a bar chart, best first.

Examples:
  python scripts/compare.py runs/*
  python scripts/compare.py runs/*improved_cnn* --out reports/cnn-runs
"""

import sys

from kaggle_digits.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
