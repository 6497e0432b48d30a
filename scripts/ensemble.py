#!/usr/bin/env python
"""Combine finished runs into one submission and show whether the ensemble beats its members.

Examples:
  python scripts/ensemble.py runs/ens-improved_cnn-s*
  python scripts/ensemble.py runs/A runs/B runs/C --method stack --out submissions/stack.csv
  python scripts/ensemble.py runs/*-kfold5 --tta 5
  python scripts/ensemble.py --recipe default      # train the default members, then combine
"""

import sys

from kaggle_digits.cli.ensemble import main

if __name__ == "__main__":
    sys.exit(main())
