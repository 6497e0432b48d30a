#!/usr/bin/env python
"""Regenerate the evaluation report files of finished training runs.

Example:
  python scripts/report.py runs/20261121-221103-improved_cnn
"""

import sys

from kaggle_digits.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
