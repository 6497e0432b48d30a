#!/usr/bin/env python
"""Train one architecture on a stratified train/validation split and write a submission.

Examples:
  python scripts/train.py --arch improved_cnn
  python scripts/train.py --arch simple_cnn --epochs 5 --no-augment
  python scripts/train.py --config runs/20261121-203000-improved_cnn/config.json   # repeat a run
  python scripts/train.py --folds 5                 # 5 models, out-of-fold validation
  python scripts/train.py --full --epochs 15         # final fit on every labelled row
  python scripts/train.py --resume runs/20261121-203000-improved_cnn   # after Ctrl-C or a crash
  python scripts/train.py --list-archs
"""

import sys

from kaggle_digits.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
