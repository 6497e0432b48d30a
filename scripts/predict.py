#!/usr/bin/env python
"""``python scripts/predict.py``: kaggle_digits.cli.predict (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
