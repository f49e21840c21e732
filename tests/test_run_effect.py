"""The run effect (climb_bayes.model.numpyro_model.run_effect): one offset per run, shared by its
checkpoints,
correlated across languages, and a new run's offset in the predictive intervals."""

from dataclasses import replace

import jax
import numpy as np
import pytest
from numpyro import handlers

from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import model_data
from climb_bayes.model.numpyro_model import climb_model
from climb_bayes.model.posterior import read_posterior
from climb_bayes.model.priors import Priors
from climb_bayes.predict import predictive_losses


@pytest.fixture(scope="module")
def table():
    frame, _ = simulate_pilots(languages=3, seed=0)
    return validate_pilots(frame, "<simulated>")


def test_runs_with_several_checkpoints_get_an_effect_and_final_losses_do_not(table) -> None:
    data, _, _ = model_data(table)
    assert data.run_count == table.frame["run_id"].nunique()
    assert model_data(table.final_of_run())[0].run_count == 0  # one point per run: no effect
    assert model_data(table, run_effect=False)[0].run_count == 0


def test_every_checkpoint_of_a_run_moves_by_the_runs_offset(table) -> None:
    data, _, _ = model_data(table)
    with handlers.seed(rng_seed=3):
        trace = handlers.trace(climb_model).get_trace(data=data, priors=Priors())
    effect = np.asarray(trace["run_effect"]["value"])
    assert effect.shape == (data.run_count, data.self_map.shape[1])
    without = model_data(table, run_effect=False)[0]
    with handlers.seed(rng_seed=3):
        plain = handlers.trace(handlers.substitute(climb_model, data={
            name: site["value"] for name, site in trace.items() if site["type"] == "sample"
            and not name.startswith("run_") and name != "loss"})).get_trace(
            data=without, priors=Priors())
    shift = (np.asarray(trace["loss"]["fn"].loc) - np.asarray(plain["loss"]["fn"].loc))
    obs_run = np.asarray(data.point_run)[np.asarray(data.obs_point)]
    np.testing.assert_allclose(shift, effect[obs_run, np.asarray(data.obs_target)], atol=1e-5)


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
