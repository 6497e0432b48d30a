#!/usr/bin/env python
"""``python scripts/search.py``: runs kaggle_digits.cli.search (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
