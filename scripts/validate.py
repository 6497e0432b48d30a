#!/usr/bin/env python
"""``python scripts/validate.py``: kaggle_digits.cli.validate (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.validate import main

if __name__ == "__main__":
    sys.exit(main())
