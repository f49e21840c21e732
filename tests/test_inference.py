"""The sampler's machinery: the pooled mass matrix and NUTS's staged warmup."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from climb_bayes.inference import pooled_covariance, run_nuts

COVARIANCE = np.array([[1.0, 0.95 * 20.0], [0.95 * 20.0, 400.0]])  # sds 1 and 20, rho 0.95


def test_pooled_covariance_is_the_sample_covariance_given_many_draws() -> None:
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(np.zeros(2), COVARIANCE, 20000)
    pooled = pooled_covariance(draws, np.eye(2))
    np.testing.assert_allclose(pooled, COVARIANCE, rtol=0.05, atol=0.05)


def test_pooled_covariance_with_few_draws_keeps_the_prior_directions() -> None:
    rng = np.random.default_rng(1)
    dim, n = 50, 10  # singular sample covariance
    pooled = pooled_covariance(rng.standard_normal((n, dim)), 4.0 * np.eye(dim))
    eigenvalues = np.linalg.eigvalsh(pooled)
    assert eigenvalues.min() >= 4.0 * dim / (n + dim) - 1e-9


def correlated_gaussian() -> None:
    numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(2), jnp.asarray(COVARIANCE)))


def test_run_nuts_learns_the_mass_matrix_from_a_poor_start() -> None:
    """From an identity mass matrix, the sampling stage uses the posterior's covariance."""
    init = {"x": jnp.zeros((2, 2))}
    mcmc = run_nuts(correlated_gaussian, {}, init, jax.random.PRNGKey(0), num_warmup=600,
                    num_samples=1000, num_chains=2, inverse_mass_matrix=np.eye(2),
                    progress_bar=False)
    mass = np.asarray(mcmc.last_state.adapt_state.inverse_mass_matrix[("x",)])
    assert mass.shape == (2, 2, 2)  # one per chain, all the pooled estimate
    np.testing.assert_allclose(mass[0], mass[1])
    # from 2 x 200 autocorrelated draws; the identity it started from is off by 400x
    np.testing.assert_allclose(mass[0], COVARIANCE, rtol=0.5)
    x = np.asarray(mcmc.get_samples()["x"])
    assert x.shape == (2000, 2)
    # 2000 correlated draws: standard errors about 0.03 and 0.6 for the two means
    assert np.all(np.abs(x.mean(axis=0)) < [0.15, 3.0])
    np.testing.assert_allclose(x.std(axis=0), [1.0, 20.0], rtol=0.15)
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    assert np.mean(steps) < 8  # a whitened 2-D Gaussian needs few leapfrog steps


def test_a_warmup_too_short_for_the_windows_keeps_the_initial_matrix() -> None:
    mcmc = run_nuts(correlated_gaussian, {}, {"x": jnp.zeros((2, 2))}, jax.random.PRNGKey(0),
                    num_warmup=2, num_samples=10, num_chains=2,
                    inverse_mass_matrix=COVARIANCE, progress_bar=False)
    mass = np.asarray(mcmc.last_state.adapt_state.inverse_mass_matrix[("x",)])
    np.testing.assert_allclose(mass[0], COVARIANCE, rtol=1e-6)
    assert mcmc.get_samples()["x"].shape == (20, 2)
