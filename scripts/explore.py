#!/usr/bin/env python
"""``python scripts/explore.py``: runs kaggle_digits.cli.explore (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.explore import main

if __name__ == "__main__":
    sys.exit(main())
