"""Inception Score on logits with known answers."""
import numpy as np
import pytest

from styleforge.errors import EvaluationError
from styleforge.metrics.inception_score import inception_score, is_warnings


def one_hot_logits(labels, k, big=60.0):
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = big  # softmax is one-hot to within e^-60
    return out


def test_uniform_predictions_score_one():
    mean, std = inception_score(np.zeros((100, 1008)))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_confident_distinct_classes_score_the_number_of_classes():
    k = 7
    labels = np.tile(np.arange(k), 10)  # each of the 10 splits holds every class once
    mean, std = inception_score(one_hot_logits(labels, k))
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0, abs=1e-9)


def test_one_class_for_every_image_scores_one():
    mean, _ = inception_score(one_hot_logits(np.zeros(50, int), 5))
    assert mean == pytest.approx(1.0, abs=1e-9)


def test_partly_confident_two_class_predictions():
    # half the images predict (p, 1 - p), half (1 - p, p): p(y) uniform, IS = exp(log 2 - H(p))
    p = 0.8
    logit = np.log(p / (1 - p))
    logits = np.array([[logit, 0.0], [0.0, logit]] * 20)
    h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    mean, _ = inception_score(logits, splits=1)
    assert mean == pytest.approx(np.exp(np.log(2) - h), rel=1e-9)


def test_splits_are_scored_separately():
    # first half of the set: 4 classes equally; second half: all one class -> split scores 4 and 1
    logits = np.concatenate([one_hot_logits(np.tile(np.arange(4), 5), 4), one_hot_logits(np.zeros(20, int), 4)])
    mean, std = inception_score(logits, splits=2)
    assert mean == pytest.approx(2.5, rel=1e-9) and std == pytest.approx(1.5, rel=1e-9)


def test_no_logits_says_why_is_is_unavailable():
    with pytest.raises(EvaluationError, match="no logits.*pool3.*--feature-net"):
        inception_score(None)
    with pytest.raises(EvaluationError, match="at least 10 images, got 4"):
        inception_score(np.zeros((4, 3)))


def test_few_images_warn_with_the_count():
    (w,) = is_warnings(500)
    assert "500 images" in w and "5,000" in w
    assert is_warnings(50_000) == []
