#!/usr/bin/env python
"""Check a submission CSV before spending one of the day's Kaggle submissions on it.

Examples:
  python scripts/validate.py submissions/20261121-203000-improved_cnn.csv
  python scripts/validate.py my.csv --data data/digit-recognizer
"""

import sys

from kaggle_digits.cli.validate import main

if __name__ == "__main__":
    sys.exit(main())
