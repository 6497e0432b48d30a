#!/usr/bin/env python
"""``python scripts/submissions.py``: kaggle_digits.cli.submissions (its docstring, --help)."""

import sys

from kaggle_digits.cli.submissions import main

if __name__ == "__main__":
    sys.exit(main())
