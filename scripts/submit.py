#!/usr/bin/env python
"""Check a submission file, then submit it to Kaggle with the official client.

Examples:
  python scripts/submit.py submissions/ensemble-20261121-230000-mean.csv -m "5x improved_cnn"
  python scripts/submit.py submissions/<run>.csv -m "improved_cnn" --wait
"""

import sys

from kaggle_digits.cli.submit import main

if __name__ == "__main__":
    sys.exit(main())
