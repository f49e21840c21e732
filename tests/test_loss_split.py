"""The loss at the anchor, split into its irreducible and reducible parts: the prior is the two
log-normals exactly, whatever coordinates the sampler moves in (climb_bayes/model/loss_split.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS

from climb_bayes.model.loss_split import LossSplit

LOG_E, E_SD, LOG_A, A_SD = np.array([0.5, 1.2]), 0.5, np.array([0.0, -1.0]), 1.0


def test_unconstrained_coordinates_are_log_sum_and_logit_fraction() -> None:
    transform = biject_to(LossSplit(LOG_E, E_SD, LOG_A, A_SD).support)
    x = jnp.array([[0.3, -0.7], [1.2, 2.0]])
    y = transform(x)
    total, fraction = np.exp([0.3, 1.2]), 1.0 / (1.0 + np.exp([0.7, -2.0]))
    np.testing.assert_allclose(y[:, 0] + y[:, 1], total, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1] / (y[:, 0] + y[:, 1]), fraction, rtol=1e-6)
    np.testing.assert_allclose(transform.inv(y), x, atol=1e-5)
    for row in range(2):
        jacobian = jax.jacfwd(transform)(x[row])
        np.testing.assert_allclose(transform.log_abs_det_jacobian(x[row], y[row]),
                                   np.log(abs(np.linalg.det(jacobian))), rtol=1e-5)


def test_nuts_in_the_new_coordinates_samples_the_two_lognormals() -> None:
    """A wrong Jacobian would tilt the draws: e.g. without the ``2 log L`` term the mean of
    ``log E`` and ``log A`` moves down by about half their variance (0.1-0.5 here)."""
    def model() -> None:
        with numpyro.plate("target", 2):
            numpyro.sample("loss_split", LossSplit(LOG_E, E_SD, LOG_A, A_SD))

    mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=4000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    logs = np.log(np.asarray(mcmc.get_samples()["loss_split"], dtype=np.float64))
    # roughly 1000 effective draws: standard errors about 0.016 (E) and 0.03 (A) of the mean
    np.testing.assert_allclose(logs[..., 0].mean(axis=0), LOG_E, atol=0.08)
    np.testing.assert_allclose(logs[..., 1].mean(axis=0), LOG_A, atol=0.15)
    np.testing.assert_allclose(logs[..., 0].std(axis=0), E_SD, rtol=0.1)
    np.testing.assert_allclose(logs[..., 1].std(axis=0), A_SD, rtol=0.1)


def test_draws_are_the_two_lognormals() -> None:
    draws = LossSplit(LOG_E, E_SD, LOG_A, A_SD).sample(jax.random.PRNGKey(1), (8000,))
    assert draws.shape == (8000, 2, 2)
    logs = np.log(np.asarray(draws, dtype=np.float64))
    np.testing.assert_allclose(logs[..., 0].mean(axis=0), LOG_E, atol=0.03)
    np.testing.assert_allclose(logs[..., 1].mean(axis=0), LOG_A, atol=0.05)
    np.testing.assert_allclose(logs.std(axis=0), [[E_SD, A_SD]] * 2, rtol=0.05)
