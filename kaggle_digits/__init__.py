"""kaggle-digits: a toolkit for Kaggle's Digit Recognizer (fetch, train, ensemble, submit)."""

import os

# On the 2-core AVX2 machines we measured, TensorFlow's oneDNN kernels ran these small CNNs at
# either ~800 or ~1,400 images/s from one run to the next, while the Eigen kernels held ~1,450
# (BENCHMARKS.md). This must be set before TensorFlow is imported; export
# TF_ENABLE_ONEDNN_OPTS=1 to override.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
