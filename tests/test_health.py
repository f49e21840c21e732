"""The fit's health verdict (climb_bayes.model.health): known chains, known verdicts; the verdict
travels with the posterior file and the refit compares fits by it."""

import arviz as az
import numpy as np
import pytest

from climb_bayes.model.fitting import better
from climb_bayes.model.health import (
    BROKEN,
    HEALTHY,
    MARGINAL,
    assess,
    left_to_prior,
    store,
    stored_health,
)

CHAINS, DRAWS, TARGETS = 4, 500, 3


def inference_data(E: np.ndarray, diverging: np.ndarray | None = None,
                   energy: np.ndarray | None = None, prior: np.ndarray | None = None
                   ) -> az.InferenceData:
    """Draws ``(chain, draw, target)`` of ``E`` and of an independent ``sigma``, with the
    sampler statistics NUTS would leave (no divergences and a well-mixed energy unless
    given)."""
    rng = np.random.default_rng(11)
    chains, draws, _ = E.shape
    sigma = np.abs(rng.normal(0.02, 0.001, E.shape))
    stats = {"diverging": np.zeros((chains, draws), bool) if diverging is None else diverging,
             "energy": rng.normal(size=(chains, draws)) if energy is None else energy}
    groups = {"prior": {"E": prior, "sigma": np.abs(rng.normal(0, 0.05, prior.shape))}
              } if prior is not None else {}
    return az.from_dict(posterior={"E": E, "sigma": sigma}, sample_stats=stats,
                        dims={"E": ["target"], "sigma": ["target"]},
                        coords={"target": ["en", "de", "fr"]}, **groups)


def iid(seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).normal(size=(CHAINS, DRAWS, TARGETS))


def test_well_mixed_chains_are_healthy() -> None:
    health = assess(inference_data(iid()))
    assert health.verdict == HEALTHY and health.reasons == ()
    assert 0.99 < health.max_r_hat < 1.01 and health.min_ess_bulk > 1000


def test_chains_that_never_moved_are_broken_not_healthy() -> None:
    """The bug this module exists for: frozen chains have no variance, their R-hat is NaN,
    and a check that drops non-finite values calls them healthy."""
    E = np.broadcast_to(np.array([2.0, 2.5, 3.0]), (CHAINS, DRAWS, TARGETS)).copy()
    E[:, :, 0] += np.arange(CHAINS)[:, None] * 0.1  # stuck, each chain somewhere else
    health = assess(inference_data(E, energy=np.ones((CHAINS, DRAWS))))
    assert health.verdict == BROKEN
    assert not np.isfinite(health.max_r_hat)
    assert any("not a number" in reason for reason in health.reasons)
    assert any("E-BFMI" in reason for reason in health.reasons)


def test_chains_stuck_apart_are_broken_and_named() -> None:
    E = iid()
    E[1, :, 2] += 5.0  # one chain far from the others on fr
    health = assess(inference_data(E))
    assert health.verdict == BROKEN
    assert health.max_r_hat > 1.1 and "E[fr]" in health.line


@pytest.mark.parametrize(("divergent", "verdict"), [(0, HEALTHY), (5, MARGINAL), (21, BROKEN)])
def test_divergences_by_their_share(divergent: int, verdict: str) -> None:
    """More than 1% of the 2000 transitions divergent is broken; any divergence is marginal."""
    diverging = np.zeros((CHAINS, DRAWS), bool)
    diverging.flat[:divergent] = True
    health = assess(inference_data(iid(), diverging))
    assert health.verdict == verdict and health.divergences == divergent


def test_slowly_mixing_chains_are_marginal() -> None:
    """An AR(1) chain with coefficient 0.97 has an ESS of about 2000 * 0.03 / 1.97 = 30."""
    rng = np.random.default_rng(2)
    E = np.zeros((CHAINS, DRAWS, TARGETS))
    E[:, 0] = rng.normal(size=(CHAINS, TARGETS))
    for t in range(1, DRAWS):
        E[:, t] = 0.97 * E[:, t - 1] + np.sqrt(1 - 0.97**2) * rng.normal(size=(CHAINS, TARGETS))
    health = assess(inference_data(E))
    assert health.verdict in (MARGINAL, BROKEN)
    assert health.min_ess_bulk < 150
    assert any("bulk ESS" in reason for reason in health.reasons)


def test_the_verdict_travels_with_the_file(tmp_path) -> None:
    E = iid()
    E[1, :, 2] += 5.0
    idata = inference_data(E)
    store(idata, assess(idata))
    idata.to_netcdf(str(tmp_path / "posterior.nc"))
    again = stored_health(az.from_netcdf(str(tmp_path / "posterior.nc")))
    assert again == assess(idata)
    # a file without a stored verdict is assessed when read
    bare = inference_data(iid())
    assert stored_health(bare).verdict == HEALTHY


def test_refit_prefers_a_finite_r_hat_to_a_frozen_fit() -> None:
    """Two broken fits: the one whose chains never moved (R-hat NaN) must not win."""
    frozen_E = np.broadcast_to(np.array([2.0, 2.5, 3.0]), (CHAINS, DRAWS, TARGETS)).copy()
    frozen = assess(inference_data(frozen_E, energy=np.ones((CHAINS, DRAWS))))
    apart = iid()
    apart[1, :, 2] += 5.0
    stuck = assess(inference_data(apart))
    assert frozen.verdict == stuck.verdict == BROKEN
    assert better(stuck, frozen) and not better(frozen, stuck)
    healthy = assess(inference_data(iid()))
    assert better(healthy, stuck) and not better(stuck, healthy)


def test_parameters_left_to_the_prior_are_named() -> None:
    """E[de] keeps its prior's spread; the data narrowed every other entry tenfold."""
    prior = iid(seed=5)[:1]
    posterior = iid(seed=6, scale=0.1)
    posterior[:, :, 1] *= 10.0
    left = left_to_prior(inference_data(posterior, prior=prior), sites=("E", "sigma"))
    assert left == {"E": ["E[de]"]}


def test_a_single_chain_cannot_be_judged_healthy() -> None:
    health = assess(inference_data(iid()[:1]))
    assert health.verdict == BROKEN
    assert health.reasons[0] == ("R-hat is undefined with a single chain: run "
                                 "sampler.chains=2 or more")
    assert not any("not a number" in reason for reason in health.reasons)


def test_a_posterior_without_sampler_statistics_is_not_trusted() -> None:
    idata = az.from_dict(posterior={"E": iid()}, dims={"E": ["target"]})
    health = assess(idata)
    assert health.verdict == BROKEN
    assert health.reasons == ("there are no sampler statistics (sample_stats: diverging, "
                              "energy), so the sampling cannot be checked: fit it with "
                              "python -m climb_bayes.fit",)
