#!/usr/bin/env python
"""``python scripts/report.py``: kaggle_digits.cli.report (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
