#!/usr/bin/env python
"""``python scripts/predict.py``: runs kaggle_digits.cli.predict (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
