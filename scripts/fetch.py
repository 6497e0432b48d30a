#!/usr/bin/env python
"""``python scripts/fetch.py``: kaggle_digits.cli.fetch (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.fetch import main

if __name__ == "__main__":
    sys.exit(main())
