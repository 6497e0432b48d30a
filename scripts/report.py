#!/usr/bin/env python
"""``python scripts/report.py``: runs kaggle_digits.cli.report (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
