#!/usr/bin/env python
"""``python scripts/compare.py``: kaggle_digits.cli.compare (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
