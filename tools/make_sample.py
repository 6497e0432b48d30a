#!/usr/bin/env python
"""Rebuild data/sample/ (the bundled offline default) from a Kaggle bundle.

Usage: python tools/make_sample.py ../shared/kaggle/digit-recognizer.zip
Draws a seeded, class-stratified 5,000 rows of train.csv and the first 1,000 rows of test.csv,
gzip-compressed so the sample stays around 1.5 MB in git.
"""

import sys
import zipfile
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

TRAIN_ROWS, TEST_ROWS, SEED = 5000, 1000, 2026


def main(bundle: str) -> None:
    out = Path(__file__).resolve().parent.parent / "data" / "sample"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(bundle) as archive:
        train = pd.read_csv(archive.open("train.csv"))
        test = pd.read_csv(archive.open("test.csv"), nrows=TEST_ROWS)
    sample, _ = train_test_split(train, train_size=TRAIN_ROWS, stratify=train["label"],
                                 random_state=SEED)
    options = {"index": False, "compression": {"method": "gzip", "mtime": 0}}
    sample.sort_index().to_csv(out / "train.csv.gz", **options)
    test.to_csv(out / "test.csv.gz", **options)
    pd.DataFrame({"ImageId": range(1, TEST_ROWS + 1), "Label": 0}).to_csv(
        out / "sample_submission.csv.gz", **options)
    print(f"wrote {out}: {TRAIN_ROWS} train rows, {TEST_ROWS} test rows")


if __name__ == "__main__":
    main(sys.argv[1])
