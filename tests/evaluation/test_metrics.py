import math

import numpy as np
import pytest

from kaggle_digits.evaluation.metrics import classification_scores


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


def test_accuracy_interval_is_the_exact_binomial_one():
    from kaggle_digits.evaluation.metrics import accuracy_interval, format_accuracy

    low, high = accuracy_interval(8376, 8400)  # 99.71%: 24 errors in 8,400
    assert 0.9957 < low < 0.9971 < high < 0.9982
    assert accuracy_interval(10, 10)[1] == 1.0 and accuracy_interval(0, 10)[0] == 0.0
    assert format_accuracy(8376 / 8400, 8400) == "99.7143% (95% CI 99.58%-99.82%, 8,400 rows)"


def test_mcnemar_counts_only_disagreements():
    from kaggle_digits.evaluation.metrics import mcnemar_exact

    first = np.array([True] * 90 + [False] * 10)
    second = first.copy()
    assert mcnemar_exact(first, second) == {"only_first": 0, "only_second": 0, "p_value": 1.0}
    second[:12] = False  # The second run misses 12 rows the first got right.
    result = mcnemar_exact(first, second)
    assert (result["only_first"], result["only_second"]) == (12, 0)
    assert result["p_value"] == pytest.approx(2 * 0.5 ** 12)
    second[90:93] = True  # ... and gets 3 the first missed: 12 vs 3 is weaker evidence.
    assert 0.03 < mcnemar_exact(first, second)["p_value"] < 0.04
