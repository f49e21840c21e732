"""The run effect (climb_bayes.model.run_effect.run_likelihood): one offset and one slope
in budget per run, integrated out, so that a run's observations are one Gaussian vector; and a
new run's offset in the predictive intervals."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from numpyro import handlers
from numpyro.infer import Predictive

from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import model_data
from climb_bayes.model.numpyro_model import climb_model
from climb_bayes.model.posterior import read_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.model.run_effect import forward_substitution, small_cholesky
from climb_bayes.predict import predictive_losses

#: Priors whose run effect is large next to the noise, so a wrong covariance shows.
LOUD = Priors(run_sd_fraction=0.05, run_slope_fraction=0.05, sigma_fraction=0.002)


@pytest.fixture(scope="module")
def table():
    frame, _ = simulate_pilots(languages=3, seed=0)
    return validate_pilots(frame, "<simulated>")


def test_runs_with_several_checkpoints_get_an_effect_and_final_losses_do_not(table) -> None:
    data, _, _ = model_data(table)
    assert data.run_count == table.frame["run_id"].nunique()
    assert model_data(table.final_of_run())[0].run_count == 0  # one point per run: no effect
    assert model_data(table, run_effect=False)[0].run_count == 0
    lag = np.asarray(data.obs_lag)
    obs_run = np.asarray(data.point_run)[np.asarray(data.obs_point)]
    assert (lag <= 0).all() and np.allclose(np.bincount(obs_run, weights=lag == 0) > 0, True)


def test_the_small_cholesky_factor_and_solve_match_numpy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 7, 7))
    matrices = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(7)
    residual = rng.normal(size=(5, 7))
    factor = np.asarray(small_cholesky(jnp.asarray(matrices, jnp.float64)))
    expected = np.linalg.cholesky(matrices)
    np.testing.assert_allclose(factor, expected, atol=1e-4)
    np.testing.assert_allclose(
        np.asarray(forward_substitution(jnp.asarray(expected), jnp.asarray(residual))),
        np.linalg.solve(expected, residual[..., None])[..., 0], rtol=1e-4, atol=1e-4)


def covariance(trace, data, index: np.ndarray) -> np.ndarray:
    """The covariance of one run's observations ``index``, written out from the docstring of
    ``run_likelihood``: offset, slope and noise."""
    rho, psi = (np.asarray(trace[site]["value"], np.float64) for site in ("run_sd",
                                                                            "run_slope_sd"))
    omega = np.asarray(trace["run_correlation"]["value"], np.float64)
    between = (rho[:, None] * omega) @ (rho[:, None] * omega).T
    target = np.asarray(data.obs_target)[index]
    lag = np.asarray(data.obs_lag, np.float64)[index]
    noise = np.asarray(trace["sigma"]["value"], np.float64)[target]
    return (between[np.ix_(target, target)]
            + np.outer(lag, lag) * (target[:, None] == target[None, :]) * psi[target] ** 2
            + np.diag(noise ** 2))


def test_a_runs_observations_are_one_gaussian_vector(table) -> None:
    data, loss, _ = model_data(table)
    priors = replace(LOUD, noise_budget_exponent_sd=0.0)
    with handlers.seed(rng_seed=3):
        trace = handlers.trace(climb_model).get_trace(data=data, priors=priors, loss=loss)
    without = model_data(table, run_effect=False)[0]
    fixed = {name: site["value"] for name, site in trace.items()
             if site["type"] == "sample" and name != "loss"}
    plain = handlers.trace(handlers.substitute(handlers.seed(climb_model, 0), data=fixed)
                           ).get_trace(data=without, priors=priors, loss=loss)
    mean = np.asarray(plain["loss"]["fn"].loc, np.float64)  # the law, no run effect
    pointwise = np.asarray(trace["loss"]["fn"].log_prob(loss), np.float64)
    obs_run = np.asarray(data.point_run)[np.asarray(data.obs_point)]
    for run in (0, 5, data.run_count - 1):
        index = np.flatnonzero(obs_run == run)
        expected = scipy.stats.multivariate_normal(mean[index], covariance(trace, data, index)
                                                   ).logpdf(np.asarray(loss, np.float64)[index])
        assert pointwise[index].sum() == pytest.approx(expected, abs=2e-3 * len(index))
    assert np.isfinite(pointwise).all() and pointwise.shape == (len(loss),)


def test_predictive_draws_share_the_runs_offset_and_slope(table) -> None:
    data, _, _ = model_data(table)
    with handlers.seed(rng_seed=4):
        trace = handlers.trace(climb_model).get_trace(data=data, priors=LOUD)
    fixed = {name: np.repeat(np.asarray(site["value"])[None], 4000, axis=0)
             for name, site in trace.items() if site["type"] == "sample" and name != "run_noise"}
    draws = np.asarray(Predictive(climb_model, fixed, return_sites=["loss"])(
        jax.random.PRNGKey(1), data=data, priors=LOUD)["loss"], np.float64)
    obs_run = np.asarray(data.point_run)[np.asarray(data.obs_point)]
    index = np.flatnonzero(obs_run == 2)
    observed = np.cov(draws[:, index], rowvar=False)
    expected = covariance(trace, data, index)
    np.testing.assert_allclose(observed, expected, atol=0.1 * np.abs(expected).max())
    other = np.flatnonzero(obs_run == 3)
    across = np.cov(draws[:, index[0]], draws[:, other[0]])[0, 1]
    assert abs(across) < 0.1 * expected[0, 0]  # different runs are independent


def test_a_new_runs_offset_is_correlated_across_languages(fitted) -> None:
    posterior = read_posterior(fitted.posterior)
    draws, targets = posterior.sigma.shape
    together = np.zeros((draws, targets, targets), np.float32)
    together[:, :, 0] = 1.0  # Cholesky factor of an all-ones correlation
    runs = replace(posterior, sigma=np.full_like(posterior.sigma, 1e-6),
                   run_sd=np.full((draws, targets), 0.1, np.float32),
                   run_correlation=together)
    mean = np.zeros((draws, 5, targets), np.float32)
    offsets = np.asarray(predictive_losses(runs, mean, np.full(5, posterior.law.reference),
                                           jax.random.PRNGKey(0)))
    np.testing.assert_allclose(offsets[..., 1], offsets[..., 0], atol=1e-4)  # one offset
    assert np.std(offsets) == pytest.approx(0.1, rel=0.1)
    alone = np.asarray(predictive_losses(replace(posterior, sigma=runs.sigma, run_sd=None,
                                                 run_correlation=None), mean,
                                         np.full(5, posterior.law.reference),
                                         jax.random.PRNGKey(0)))
    assert np.abs(alone).max() < 1e-3  # a fit without a run effect: only the noise
