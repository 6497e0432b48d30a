"""Training: the run's config, one fit, k folds, distillation, a run from start to finish."""
