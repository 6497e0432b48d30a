#!/usr/bin/env python
"""``python scripts/train.py``: runs kaggle_digits.cli.train (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
