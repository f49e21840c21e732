"""The sampler's machinery: the MAP start, the pooled mass matrix and NUTS's staged warmup."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import scipy.optimize
from numpyro.infer.reparam import LocScaleReparam
from numpyro.infer.util import constrain_fn, initialize_model

from climb_bayes.model.inference import centredness, pooled_covariance, reparameterised, run_nuts
from climb_bayes.model.map_search import find_map, prior_median, whitened_descent
from climb_bayes.model.numpyro_model import decentred

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


def test_whitened_descent_lands_on_an_optimum_plain_lbfgs_stalls_short_of() -> None:
    """A stiff quadratic plus a quartic bowl (condition number 1e8 at the optimum, as the
    potential's ridges at many languages): L-BFGS stops far short in 200 iterations; the
    whitened rounds reach the optimum's value to 1e-8 nats and never end higher."""
    rng = np.random.default_rng(2)
    dim = 60
    rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    stiffness = (rotation * np.logspace(0, 8, dim)) @ rotation.T
    centre = rng.standard_normal(dim)

    def value(x: np.ndarray) -> float:
        d = x - centre
        return float(0.5 * d @ stiffness @ d + 0.25 * np.sum(d**4))

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        d = x - centre
        return value(x), stiffness @ d + d**3

    def hessian(x: np.ndarray) -> np.ndarray:
        return stiffness + np.diag(3.0 * (x - centre) ** 2)

    start = centre + 3.0 * rng.standard_normal(dim)
    stalled = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                      options={"maxiter": 200})
    assert stalled.fun > 1e-3  # the optimum is 0 at ``centre``
    x, found = whitened_descent(objective, hessian, stalled.x, stalled.fun)
    assert found == value(x) and found < 1e-8
    np.testing.assert_allclose(x, centre, atol=1e-3)


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


SCHOOL_EFFECTS = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SCHOOL_SDS = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def schools(centred: bool) -> None:
    """Eight schools (Rubin 1981): a pooled site ``theta ~ Normal(mu, tau)``."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    reparam = {} if centred else {"theta": LocScaleReparam(centered=0.0)}
    with numpyro.handlers.reparam(config=reparam), numpyro.plate("school", 8):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("y", dist.Normal(theta, SCHOOL_SDS), obs=SCHOOL_EFFECTS)


def test_prior_median_is_numpyros_start_and_potential() -> None:
    """The compiled start: each site at the median of its prior draws given the values above
    it (``mu`` near 0, ``tau`` near HalfCauchy's median 5), in the unconstrained space; and the
    potential is numpyro's (``initialize_model``'s) at any point."""
    start, potential = prior_median(schools, {"centred": True}, jax.random.PRNGKey(1))
    assert set(start) == {"mu", "tau", "theta"}
    assert abs(float(start["mu"])) < 2.0  # median of 15 draws of Normal(0, 5): sd about 1.6
    assert 2.0 < float(jnp.exp(start["tau"])) < 12.0  # unconstrained: log tau
    theta = np.asarray(start["theta"])
    assert np.ptp(theta) < 4 * float(jnp.exp(start["tau"]))  # medians of Normal(mu, tau)
    info = initialize_model(jax.random.PRNGKey(2), schools, model_kwargs={"centred": True})
    for z in (start, info.param_info.z):
        np.testing.assert_allclose(potential(z), info.potential_fn(z), rtol=1e-6)


def test_the_centred_optimum_is_the_neck_of_the_funnel_and_the_non_centred_one_is_not() -> None:
    """Why the MAP is found non-centred: centred, the density grows without bound as the
    spread shrinks, so the optimiser runs into the neck (``log tau`` far below any value the
    posterior gives weight to); non-centred, the optimum keeps a finite spread."""
    key = jax.random.PRNGKey(0)
    centred = find_map(schools, {"centred": True}, key, num_starts=2)
    non_centred = find_map(schools, {"centred": False}, key, num_starts=2)
    assert float(centred.z["tau"][0]) < -8.0  # unconstrained: log tau
    assert 0.0 < float(non_centred.z["tau"][0]) < 5.0


def test_reparameterised_optima_keep_their_values_and_carry_the_laplace_covariance() -> None:
    found = find_map(schools, {"centred": False}, jax.random.PRNGKey(0), num_starts=2)
    moved = reparameterised(found, schools, {"centred": False}, {"centred": True})
    assert set(moved.z) == {"mu", "tau", "theta"}
    for start in range(2):
        before = constrain_fn(schools, (), {"centred": False},
                              jax.tree.map(lambda x, i=start: x[i], found.z),
                              return_deterministic=True)
        after = constrain_fn(schools, (), {"centred": True},
                             jax.tree.map(lambda x, i=start: x[i], moved.z))
        for name in ("mu", "tau", "theta"):
            np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(moved.potential, found.potential)
    # The covariance is J S J^T, J the Jacobian of the move (here by central differences)
    names = sorted(found.z)  # ravel_pytree's order
    sizes = [int(np.size(found.z[name][0])) for name in names]

    def move(flat: np.ndarray) -> np.ndarray:
        parts = np.split(flat, np.cumsum(sizes)[:-1])
        z = {name: jnp.asarray(part.reshape(np.shape(found.z[name][0])), dtype=jnp.float64)
             for name, part in zip(names, parts, strict=True)}
        values = constrain_fn(schools, (), {"centred": False}, z, return_deterministic=True)
        return np.concatenate([[float(values["mu"])], [np.log(float(values["tau"]))],
                               np.asarray(values["theta"])])

    centre = np.concatenate([np.ravel(found.z[name][0]) for name in names]).astype(np.float64)
    step = 1e-4
    with jax.enable_x64(True):
        jacobian = np.stack([(move(centre + step * e) - move(centre - step * e)) / (2 * step)
                             for e in np.eye(len(centre))], axis=1)
    np.testing.assert_allclose(moved.covariance, jacobian @ found.covariance @ jacobian.T,
                               rtol=1e-3, atol=1e-3)
    # Energies are the centred model's: its potential at the moved optimum
    flat = np.concatenate([np.ravel(moved.z[name][0]) for name in sorted(moved.z)])
    assert np.isfinite(moved.energy(flat))


def groups(centring: np.ndarray | None = None) -> None:
    """Two groups ``x_g ~ Normal(mu, tau)``: the first seen by 50 precise observations, the
    second by none; sampled with centredness ``centring`` per group (default non-centred)."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    tau = numpyro.sample("tau", dist.LogNormal(0.0, 0.3))
    centred = 0.0 if centring is None else jnp.asarray(centring, jnp.result_type(float))
    with numpyro.handlers.reparam(config={"x": LocScaleReparam(centered=centred)}):
        with numpyro.plate("group", 2):
            x = numpyro.sample("x", dist.Normal(mu, tau))
    numpyro.sample("y", dist.Normal(x[0], 0.05), obs=jnp.full(50, 0.7))


def test_values_the_data_pin_down_are_centred_and_the_rest_are_not() -> None:
    """``centredness``: the well-observed group's non-centred coordinate has Laplace variance
    far below 1/2 and is centred; the unobserved one keeps its prior's variance 1 and is not.
    The optimum then moves into those coordinates with its values unchanged
    (:func:`climb_bayes.model.numpyro_model.decentred`)."""
    found = find_map(groups, {}, jax.random.PRNGKey(0), num_starts=2)
    choice = centredness(found, ["x", "absent"])
    np.testing.assert_array_equal(choice["x"], [1.0, 0.0])
    assert set(choice) == {"x"}
    sampled = {"centring": choice["x"]}
    moved = reparameterised(found, groups, {}, sampled,
                            partial(decentred, centring=choice, priors={"x": ("mu", "tau")}))
    before = constrain_fn(groups, (), {}, jax.tree.map(lambda v: v[0], found.z),
                          return_deterministic=True)
    after = constrain_fn(groups, (), sampled, jax.tree.map(lambda v: v[0], moved.z),
                         return_deterministic=True)
    np.testing.assert_allclose(after["x"], before["x"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(after["x_decentered"][0], before["x"][0], rtol=1e-5)  # centred
