"""Evaluation: scores, predictions (with TTA), reports, pictures, comparisons."""
