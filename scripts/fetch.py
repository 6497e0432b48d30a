#!/usr/bin/env python
"""Download the Digit Recognizer bundle with the official kaggle client and unpack it.

Examples:
  python scripts/fetch.py                                   # needs Kaggle credentials
  python scripts/fetch.py --from-zip ../shared/kaggle/digit-recognizer.zip
  python scripts/fetch.py --force                           # download again
"""

import sys

from kaggle_digits.cli.fetch import main

if __name__ == "__main__":
    sys.exit(main())
