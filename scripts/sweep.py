#!/usr/bin/env python
"""``python scripts/sweep.py``: runs kaggle_digits.cli.sweep (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
