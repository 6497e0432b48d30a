#!/usr/bin/env python
"""``python scripts/train.py``: kaggle_digits.cli.train (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
