import math

import numpy as np
import pytest

from kaggle_digits.evaluation import classification_scores


def test_scores_match_a_hand_computed_case():
    labels = np.array([0, 1, 2, 3])
    probs = np.full((4, 10), 0.05)
    probs[[0, 1, 2], [0, 1, 2]] = 0.55  # Three right with probability 0.55 ...
    probs[3, 4] = 0.55  # ... one wrong, giving the true class 0.05.
    scores = classification_scores(labels, probs)
    assert scores["accuracy"] == 0.75
    assert scores["log_loss"] == pytest.approx(-(3 * math.log(0.55) + math.log(0.05)) / 4)


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"shape \(2, 10\)"):
        classification_scores(np.array([0, 1]), np.ones((2, 9)) / 9)
