#!/usr/bin/env python
"""``python scripts/submit.py``: runs kaggle_digits.cli.submit (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.submit import main

if __name__ == "__main__":
    sys.exit(main())
