#!/usr/bin/env python
"""``python scripts/compare.py``: runs kaggle_digits.cli.compare (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
