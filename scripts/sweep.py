#!/usr/bin/env python
"""``python scripts/sweep.py``: kaggle_digits.cli.sweep (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
