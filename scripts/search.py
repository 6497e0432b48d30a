#!/usr/bin/env python
"""Search train.py's options for one architecture with Optuna, pruning poor trials.

Examples:
  python scripts/search.py --arch improved_cnn --trials 20 --epochs 10
  python scripts/search.py --arch mlp --trials 8 --space "lr=log:1e-4:1e-2 dropout=float:0.1:0.5"
  python scripts/search.py --arch improved_cnn --trials 20 --executor ray --ray-address auto
"""

import sys

from kaggle_digits.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
