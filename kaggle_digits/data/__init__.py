"""Data in: the competition files fetched, loaded and checked, split, augmented, batched."""
