#!/usr/bin/env python
"""Run a hyperparameter grid or a named study on one split and write a comparison table.

Examples:
  python scripts/sweep.py --arch simple_cnn --grid "epochs=5,10 filters=16-32-32,64-128-128"
  python scripts/sweep.py --study seed000-s6
  python scripts/sweep.py --list-studies
"""

import sys

from kaggle_digits.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
