#!/usr/bin/env python
"""``python scripts/submit.py``: kaggle_digits.cli.submit (its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.submit import main

if __name__ == "__main__":
    sys.exit(main())
