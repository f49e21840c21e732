"""The walk-intensity estimate that sets the random walk's prior: known truth recovered."""

import numpy as np
import pytest

from benchmarks.published_curvature import walk_covariance, walk_intensity


def curves(tau: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` curves on Data Mixing Laws' 11 checkpoints (10k-30k steps): a random parabola, an
    integrated Wiener process of intensity ``tau`` and white noise of each curve's own sd."""
    rng = np.random.default_rng(seed)
    steps = np.array([10, 12, 13, 14, 16, 18, 20, 22, 24, 27, 30], dtype=float)
    u = np.log(steps / steps[0])
    root = np.linalg.cholesky(walk_covariance(u) + 1e-12 * np.eye(len(u)))
    walk = tau * rng.standard_normal((n, len(u))) @ root.T
    coefficients = rng.normal([3.0, -0.08, 0.01], [0.3, 0.02, 0.02], size=(n, 3))
    parabola = coefficients @ np.stack([np.ones_like(u), u, u**2])
    noise = rng.uniform(0.001, 0.004, size=(n, 1)) * rng.standard_normal((n, len(u)))
    return parabola + walk + noise, u


def test_walk_covariance_is_the_integrated_wiener_process() -> None:
    """Var at t is t^3 / 3, covariance s^2 t / 2 - s^3 / 6: checked against a simulation."""
    u = np.array([0.0, 0.5, 1.0])
    rng = np.random.default_rng(0)
    steps = 2000
    slope = np.cumsum(rng.standard_normal((20000, steps)) * np.sqrt(1.0 / steps), axis=1)
    level = np.cumsum(slope, axis=1) / steps
    sampled = np.cov(level[:, [steps // 2 - 1, steps - 1]].T)
    np.testing.assert_allclose(walk_covariance(u)[1:, 1:], sampled, rtol=0.05)
    assert walk_covariance(u)[0].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("tau", [0.02, 0.06])
def test_walk_intensity_recovers_a_known_intensity(tau: float) -> None:
    """Over 400 curves with the published curves' noise the estimate is within 25% of the
    truth (over 20 seeds: within 22% at 0.02, 11% at 0.06)."""
    estimate, low, high = walk_intensity(*curves(tau, 400, seed=1))
    assert abs(estimate - tau) < 0.25 * tau
    assert low < estimate < high


def test_walk_intensity_of_parabolas_is_small() -> None:
    """Curves that are parabolas plus noise give an interval reaching down to 0-0.003, below
    what a walk of 0.01 gives."""
    _, low, high = walk_intensity(*curves(0.0, 400, seed=2))
    assert low <= 0.003
    assert high < 0.01
