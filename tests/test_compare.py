"""Comparing mixes (climb_bayes.decide.compare): known answers on hand-made draws."""

import numpy as np
import pandas as pd
import pytest

from climb_bayes.decide.compare import (
    bounded_uniform,
    gains,
    near_optimal_range,
    recommendation,
    run_noise,
)


@pytest.mark.parametrize(("lower", "upper", "expected"), [
    ([0, 0, 0], [1, 1, 1], [1 / 3, 1 / 3, 1 / 3]),  # uniform where feasible
    ([0, 0, 0], [0.1, 1, 1], [0.1, 0.45, 0.45]),  # a cap: the rest share equally (UniMax)
    ([0.5, 0, 0], [1, 1, 1], [0.5, 0.25, 0.25]),  # a floor
    ([0, 0, 0], [0.1, 0.2, 1], [0.1, 0.2, 0.7]),
])
def test_bounded_uniform_by_hand(lower, upper, expected):
    np.testing.assert_allclose(bounded_uniform(np.array(lower, float), np.array(upper, float)),
                               expected, atol=1e-12)


def test_bounded_uniform_refuses_bounds_no_mix_meets():
    with pytest.raises(ValueError, match="no mix"):
        bounded_uniform(np.zeros(2), np.array([0.3, 0.3]))


def test_run_noise_is_the_median_spread_of_the_weighted_loss():
    spread = np.array([[0.03, 0.04], [0.06, 0.08], [0.3, 0.4]])  # three draws, two languages
    weights = np.array([0.5, 0.5])
    # sqrt(0.25 s1^2 + 0.25 s2^2) = 0.5 * 5/3 * s1 per draw: 0.025, 0.05, 0.25
    assert run_noise(spread, weights) == pytest.approx(0.05)


def test_gains_and_near_optimality_by_hand():
    # four draws, three mixes; the reference is mix 0
    weighted = np.array([[3.00, 2.90, 3.10],
                         [3.00, 2.99, 2.95],
                         [3.00, 2.80, 3.00],
                         [3.00, 3.05, 3.20]])
    optima = np.array([2.90, 2.94, 2.80, 2.98])
    table = gains(weighted, 0, 0.02, optima)
    gain = weighted[:, [0]] - weighted  # mix 1: 0.10, 0.01, 0.20, -0.05
    np.testing.assert_allclose(table["gain_mean"], gain.mean(0))
    np.testing.assert_allclose(table["p_gain"], [0.0, 0.5, 0.25])  # > 0.02: 0.10, 0.20 | 0.05
    # regrets, < 0.02? mix 0: 0.10, 0.06, 0.20, 0.02; mix 1: 0, 0.05, 0, 0.07;
    # mix 2: 0.20, 0.01, 0.20, 0.22
    np.testing.assert_allclose(table["p_near_optimal"], [0.0, 0.5, 0.25])
    assert (table["gain_q05"] <= table["gain_mean"]).all()
    assert (table["gain_mean"] <= table["gain_q95"]).all()
    without = gains(weighted, 0, 0.02)  # no optima: the gains alone
    assert "p_near_optimal" not in without
    pd.testing.assert_frame_equal(without, table.drop(columns="p_near_optimal"))


def test_near_optimal_range_spans_the_qualifying_mixes_only():
    candidates = np.array([[0.5, 0.5], [0.6, 0.4], [0.9, 0.1]])
    optima = np.zeros(5)
    weighted = np.column_stack([np.full(5, 0.001), [0.001, 0.001, 0.001, 0.001, 0.5],
                                np.full(5, 0.5)])
    table = near_optimal_range(candidates, weighted, optima, 0.01, ["de", "en"])
    assert table["near_optimal_mixes"].iloc[0] == 2  # 100% and 80% of draws within 0.01
    np.testing.assert_allclose(table["min"], [0.5, 0.4])
    np.testing.assert_allclose(table["max"], [0.6, 0.5])
    none = near_optimal_range(candidates, weighted + 1.0, optima, 0.01, ["de", "en"])
    assert none["near_optimal_mixes"].iloc[0] == 0 and none["min"].isna().all()


def test_recommendation_falls_back_to_the_reference_under_doubt():
    mix, reason = recommendation(0.95, "posterior_mean", "uniform", 0.01)
    assert mix == "posterior_mean" and "train posterior_mean" in reason
    mix, reason = recommendation(0.6, "posterior_mean", "uniform", 0.01)
    assert mix == "uniform" and "cannot tell posterior_mean from uniform" in reason
    assert "0.60 < 0.8" in reason
