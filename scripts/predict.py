#!/usr/bin/env python
"""Predict digits for a test-format CSV with any saved model and write a submission.

Examples:
  python scripts/predict.py --model runs/20261121-221103-improved_cnn --out submissions/again.csv
  python scripts/predict.py --model my_model.keras --input data/digit-recognizer/test.csv \\
      --out submissions/mine.csv --tta 5
"""

import sys

from kaggle_digits.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
