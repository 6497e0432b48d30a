#!/usr/bin/env python
"""``python scripts/submissions.py``: runs kaggle_digits.cli.submissions (see its docstring, or ``--help``)."""

import sys

from kaggle_digits.cli.submissions import main

if __name__ == "__main__":
    sys.exit(main())
