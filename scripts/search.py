#!/usr/bin/env python
"""``python scripts/search.py``: kaggle_digits.cli.search (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
