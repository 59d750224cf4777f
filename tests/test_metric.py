"""Kaggle's KL metric pinned against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.metric import class_prior_predictions, kl_divergence, kl_per_row, score


def test_hand_computed_row():
    t = np.array([[0.5, 0.5, 0, 0, 0, 0]])
    p = np.array([[0.25, 0.25, 0.1, 0.1, 0.1, 0.2]])
    assert kl_divergence(t, p) == pytest.approx(0.5 * math.log(2) * 2)


def test_zero_target_terms_count_zero_and_zero_predictions_are_clipped():
    t = np.array([[1.0, 0, 0, 0, 0, 0]])
    p = np.array([[0.0, 1.0, 0, 0, 0, 0]])
    assert kl_divergence(t, p) == pytest.approx(-math.log(1e-15))
    assert kl_divergence(t, t) == pytest.approx(0.0, abs=1e-12)


def test_no_renormalisation_and_mean_over_rows():
    t = np.array([[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]])
    p = np.array([[0.5, 0, 0, 0, 0, 0], [0, 0.25, 0, 0, 0, 0]])  # rows do not sum to 1: not rescaled
    assert kl_per_row(t, p) == pytest.approx([math.log(2), math.log(4)])
    assert kl_divergence(t, p) == pytest.approx((math.log(2) + math.log(4)) / 2)


def test_score_splits_high_vote_rows():
    t = np.array([[1.0, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0]])
    p = np.full((2, 6), 1 / 6)
    result = score(t, p, np.array([2, 12]))
    assert result["kl_high"] == pytest.approx(math.log(3))
    assert result["kl_all"] == pytest.approx((math.log(6) + math.log(3)) / 2)
    assert result["n_high"] == 1


def test_prior_is_the_mean_target():
    t = np.array([[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]])
    np.testing.assert_allclose(class_prior_predictions(t, 3)[2], [0.5, 0.5, 0, 0, 0, 0])
