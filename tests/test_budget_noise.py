"""The observation noise as a power of the budget: ``sigma_i (D / D_ref)^-kappa``."""

from dataclasses import replace

import jax
import numpy as np
import pytest

from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior
from climb_bayes.model.health import BROKEN, stored_health
from climb_bayes.model.posterior import posterior_from_idata, read_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses

BUDGETS = (1e7, 3e7, 1e8)
KAPPA = 0.5  # the noise halves with every 4x of budget
NOISE_AT_REFERENCE = 0.03


def interquartile(draws: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """The interquartile range along ``axis``."""
    high, low = np.quantile(draws, [0.75, 0.25], axis=axis)
    return high - low


def test_a_new_runs_noise_is_the_noise_at_its_budget(fitted) -> None:
    """With kappa = 0.5, a run at 4 D_ref scatters half as far as one at D_ref; at D_ref the
    scale is sigma itself."""
    posterior = read_posterior(fitted.posterior)
    assert posterior.noise_exponent is not None  # fitted by default
    halving = replace(posterior, noise_exponent=np.full_like(posterior.noise_exponent, KAPPA))
    tokens = posterior.law.reference * np.array([1.0, 4.0])
    scale = halving.noise_sd(tokens)
    np.testing.assert_allclose(scale[:, 0], posterior.sigma, rtol=1e-6)
    np.testing.assert_allclose(scale[:, 1] / scale[:, 0], 0.5, rtol=1e-5)
    unit = replace(halving, sigma=np.ones_like(posterior.sigma))
    mean = np.zeros((posterior.sigma.shape[0], 2, posterior.sigma.shape[1]), np.float32)
    draws = np.asarray(predictive_losses(unit, mean, tokens, jax.random.PRNGKey(0)))
    spread = interquartile(draws, (0, 2))
    assert spread[1] / spread[0] == pytest.approx(0.5, rel=0.05)


@pytest.mark.slow
def test_noise_that_falls_with_the_budget_is_recovered() -> None:
    """Pilots at 1e7, 3e7 and 1e8 tokens whose noise falls as ``(D / D_ref)^-0.5``: the 90%
    interval of ``kappa`` holds 0.5 and not 0, and a new run's noise at 10x the largest pilot
    spreads less than half as far as at the smallest pilot (the truth: a tenth)."""
    table, world = simulate_pilots(languages=3, budgets=BUDGETS, checkpoints=(1.0,),
                                   noise=1e-6, seed=4)
    reference = np.sqrt(BUDGETS[0] * BUDGETS[-1])
    rng = np.random.default_rng(5)
    scale = NOISE_AT_REFERENCE * (table["tokens"].to_numpy() / reference) ** -KAPPA
    table = table.assign(loss=table["loss"] + scale * rng.standard_normal(len(table)))
    idata = fit_posterior(validate_pilots(table), Priors(run_sd_fraction=0.0),
                          "source_saturating", Sampler(chains=2, warmup=200, samples=200,
                                                       map_starts=2, progress_bar=False))
    assert stored_health(idata).verdict != BROKEN
    posterior = posterior_from_idata(idata)
    low, high = np.quantile(posterior.noise_exponent, [0.05, 0.95])
    assert low < KAPPA < high and low > 0, (low, high)
    tokens = np.array([BUDGETS[0], 10 * BUDGETS[-1]])
    noise = np.zeros((posterior.sigma.shape[0], 2, len(world.targets)), np.float32)
    spread = interquartile(np.asarray(predictive_losses(posterior, noise, tokens,
                                                        jax.random.PRNGKey(0))), (0,))
    assert (spread[1] < 0.5 * spread[0]).all(), spread
