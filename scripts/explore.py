#!/usr/bin/env python
"""``python scripts/explore.py``: kaggle_digits.cli.explore (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.explore import main

if __name__ == "__main__":
    sys.exit(main())
