"""Predict digits for a test-format CSV with any saved model and write a submission.

Examples:
  python scripts/predict.py --model runs/20261121-221103-improved_cnn --out submissions/again.csv
  python scripts/predict.py --model my_model.keras --input data/digit-recognizer/test.csv \\
      --out submissions/mine.csv --tta 5
"""

from __future__ import annotations

import argparse
import sys

from kaggle_digits.cli.common import path_value, run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Load a model in Keras safe mode (a run directory: its model.keras, or the "
                    "average of a k-fold run's fold models; or any .keras file taking 28x28x1 "
                    "raw 0-255 pixels) and write ImageId,Label for every row of the input, plus "
                    "a JSON of the model and the input's SHA-256 beside the output.")
    parser.add_argument("--model", required=True, type=path_value,
                        help="run directory or .keras file")
    parser.add_argument("--input", type=path_value,
                        help="test-format CSV (pixel0..pixel783; default "
                        "test.csv of the run's data directory, else data/digit-recognizer/)")
    parser.add_argument("--out", required=True, type=path_value, help="submission CSV to write")
    parser.add_argument("--tta", type=int, default=1, metavar="N",
                        help="average over N fixed shifts/rotations (default 1: off)")
    args = parser.parse_args(argv)
    return run_command(lambda: _predict(args))


def _predict(args: argparse.Namespace) -> int:
    from kaggle_digits.evaluation.predict import default_input, predict_csv
    from kaggle_digits.evaluation.tta import check_tta

    check_tta(args.tta)
    input_csv = args.input or default_input(args.model)
    probs, submission = predict_csv(args.model, input_csv, args.out, tta=args.tta)
    import numpy as np

    from kaggle_digits.data.load import NUM_CLASSES

    counts = ", ".join(f"{digit}:{n}" for digit, n in
                       enumerate(np.bincount(probs.argmax(axis=1), minlength=NUM_CLASSES)))
    print(f"predicted digits: {counts}")
    print(f"submission: {submission}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
