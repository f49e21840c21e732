"""Parameter recovery and predictive calibration on simulated pilots (statistics, not smoke).

Pilots are simulated from known parameters with the paper's design; the posterior must
contain most true values in its 90% intervals, and 90% posterior-predictive intervals of
held-out runs (new mixes at the pilot budgets, with observation noise) must cover between 80%
and 97% of them.
"""

import jax
import numpy as np
import pytest

from climb_bayes.data.simulated import heldout_runs, simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior
from climb_bayes.model.posterior import read_posterior, save_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses

pytestmark = pytest.mark.slow

#: Budgets of the held-out runs: the pilot checkpoints (inside the range the pilots cover).
HELDOUT_BUDGETS = (5e6, 1e7, 1.5e7, 3e7)
#: 300 warm-up draws left the m = 3 world's eta[fr] at R-hat 1.06-1.12 (marginal to broken)
SAMPLER = Sampler(chains=2, warmup=600, samples=300, map_starts=2, progress_bar=False)
#: The default priors without the run effect: the simulator draws every checkpoint's noise on
#: its own, so its runs have no offsets to find (the effect itself: tests/test_run_effect.py).
PRIORS = Priors(run_sd_fraction=0.0)


#: m = 4 (another 4 minutes on 2 cores) runs with the study-scale tests (``-m study``).
@pytest.fixture(scope="module", params=[pytest.param((3, 0), id="m3"),
                                        pytest.param((4, 1), id="m4", marks=pytest.mark.study)])
def fitted(request, tmp_path_factory):
    """(posterior, world) for a simulated world with m languages."""
    languages, seed = request.param
    table, world = simulate_pilots(languages=languages, seed=seed)
    idata = fit_posterior(validate_pilots(table), PRIORS, "source_saturating", SAMPLER)
    path = tmp_path_factory.mktemp("recovery") / "posterior.nc"
    save_posterior(idata, path)
    return read_posterior(path), world


def interval_hits(draws: np.ndarray, truth: np.ndarray, mass: float = 0.9) -> np.ndarray:
    """Whether each true value lies in the central ``mass`` interval of its draws."""
    low, high = np.quantile(draws, [(1 - mass) / 2, (1 + mass) / 2], axis=0)
    return (truth >= low) & (truth <= high)


def test_true_parameters_inside_90_percent_intervals(fitted):
    posterior, world = fitted
    cross = posterior.law.self_map == 0
    hits = []
    for name in ("E", "B", "beta", "eta"):
        hits.append(interval_hits(getattr(posterior.law.params, name), getattr(world.params, name)))
    for name in ("a", "k"):
        hit = interval_hits(getattr(posterior.law.params, name), getattr(world.params, name))
        hits.append(hit[cross])
    hits = np.concatenate(hits)
    assert hits.mean() >= 0.75, f"only {hits.mean():.0%} of true parameters in 90% intervals"


def test_heldout_predictive_coverage(fitted):
    posterior, world = fitted
    shares, tokens, _, observed = heldout_runs(world, 60, HELDOUT_BUDGETS,
                                               np.random.default_rng(123))
    mean = posterior.law.predict_loss(shares, tokens)
    predictive = np.asarray(predictive_losses(posterior, mean, tokens, jax.random.PRNGKey(0)))
    coverage = interval_hits(predictive, observed).mean()
    assert 0.80 <= coverage <= 0.97, f"90% predictive intervals cover {coverage:.0%}"


def test_posterior_mean_predictions_close_to_truth(fitted):
    posterior, world = fitted
    shares, tokens, truth, _ = heldout_runs(world, 40, [3e7], np.random.default_rng(7))
    error = np.asarray(posterior.law.predict_loss(shares, tokens)).mean(0) - truth
    assert np.sqrt(np.mean(error ** 2)) < world.sigma.mean()
