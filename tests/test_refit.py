"""Stuck chains (climb_bayes.fit.chain_health) and the refit with the transfer pairs
non-centred that ``sampler.refit`` makes when the centred chains stick in the funnel."""

import importlib.util
import json
import logging
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest

from climb_bayes.fit import STUCK_DIVERGENT, STUCK_R_HAT, Sampler, chain_health, fit_posterior
from climb_bayes.model import Priors
from climb_bayes.pilots import validate_pilots

ROOT = Path(__file__).resolve().parents[1]


def inference_data(E: np.ndarray, diverging: np.ndarray) -> az.InferenceData:
    """Draws ``(chain, draw, target)`` of ``E``; ``b`` zero on its diagonal, as fitted."""
    chains, draws, targets = E.shape
    b = np.random.default_rng(1).normal(size=(chains, draws, targets, targets))
    b[..., np.arange(targets), np.arange(targets)] = 0.0
    return az.from_dict(posterior={"E": E, "b": b},
                        sample_stats={"diverging": diverging})


def test_healthy_chains_pass_and_constant_entries_are_skipped() -> None:
    rng = np.random.default_rng(0)
    idata = inference_data(rng.normal(size=(4, 500, 3)), np.zeros((4, 500), dtype=bool))
    r_hat, divergent = chain_health(idata)
    assert 0.99 < r_hat < 1.02 and divergent == 0.0


def test_chains_stuck_apart_or_diverging_are_flagged() -> None:
    rng = np.random.default_rng(0)
    E = rng.normal(size=(2, 500, 3))
    E[1, :, 2] = 5.0 + 1e-6 * rng.normal(size=500)  # one chain stuck far from the other
    diverging = np.zeros((2, 500), dtype=bool)
    diverging[1, :100] = True
    r_hat, divergent = chain_health(inference_data(E, diverging))
    assert r_hat > STUCK_R_HAT
    assert divergent == pytest.approx(0.1) and divergent > STUCK_DIVERGENT


@pytest.mark.slow
def test_a_world_of_alike_languages_is_refitted_non_centred(caplog) -> None:
    """In this simulated world every language has the same law, so the spreads of the
    transfer pairs go to zero: centred, both chains stick in the funnel (every transition
    divergent, measured); the refit samples the pairs non-centred and mixes."""
    spec = importlib.util.spec_from_file_location("simulation_study",
                                                  ROOT / "benchmarks" / "simulation_study.py")
    study = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("simulation_study", study)
    spec.loader.exec_module(study)
    frame, _, _, _ = study.make_world(study.SETTINGS["law_m4_uniform_opt_10x"], 3)
    sampler = Sampler(chains=2, warmup=500, samples=500, seed=0, map_starts=4,
                      progress_bar=False)
    with caplog.at_level(logging.WARNING, logger="climb_bayes.fit"):
        idata = fit_posterior(validate_pilots(frame), Priors(), "source_saturating", sampler)
    assert "keeping the non-centred fit" in caplog.text  # the user is told which fit stays
    assert json.loads(idata.posterior.attrs["centred"]) == ["log_beta"]
    assert "b_pair_decentered" in idata.posterior
    r_hat, divergent = chain_health(idata)
    assert r_hat < 1.05 and divergent < 0.01
