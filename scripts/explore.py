#!/usr/bin/env python
"""Look at the data before training: sample digits, class balance, missing-value and shape checks.

Examples:
  python scripts/explore.py
  python scripts/explore.py --data data/digit-recognizer --submission submissions/my.csv
"""

import sys

from kaggle_digits.cli.explore import main

if __name__ == "__main__":
    sys.exit(main())
