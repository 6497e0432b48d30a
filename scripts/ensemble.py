#!/usr/bin/env python
"""``python scripts/ensemble.py``: kaggle_digits.cli.ensemble (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.ensemble import main

if __name__ == "__main__":
    sys.exit(main())
