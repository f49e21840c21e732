"""The refit with the transfer pairs in the other parameterisation that ``sampler.refit``
makes when a fit is broken (the verdicts themselves: tests/test_health.py)."""

import json
import logging
from pathlib import Path

import pytest

from benchmarks.simulation.settings import SETTINGS, make_world
from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior, model_data, sample_posterior
from climb_bayes.model.health import BROKEN, stored_health
from climb_bayes.model.numpyro_model import POOLED_SITES
from climb_bayes.model.priors import Priors

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.study
def test_a_world_of_alike_languages_is_refitted_non_centred(caplog) -> None:
    """In this simulated world every language has the same law, so the spreads of the
    transfer pairs go to zero, where centred chains can stick in the funnel: the fit that is
    kept, refitted non-centred or not, is not broken and mixes."""
    frame, _, _, _ = make_world(SETTINGS["law_m4_uniform_opt_10x"], 3)
    sampler = Sampler(chains=2, warmup=500, samples=500, seed=0, map_starts=4,
                      progress_bar=False)
    with caplog.at_level(logging.WARNING, logger="climb_bayes.fit"):
        idata = fit_posterior(validate_pilots(frame), Priors(), "source_saturating", sampler,
                              centred=POOLED_SITES)
    # With transfer sampled at the reference budget and the typical share, the centred fit of
    # this world is no longer broken (measured), so the refit need not run; when it does, the
    # log and the attributes say which fit was kept (the choice itself: test_health.py).
    centred = json.loads(idata.posterior.attrs["centred"])
    if "sampling again with ['log_beta'] centred" in caplog.text:
        kept = "keeping the second fit" in caplog.text
        assert kept or "keeping the first fit" in caplog.text
        assert centred == (["log_beta"] if kept else ["log_beta", "a_pair", "k_pair"])
        assert ("a_pair_decentered" in idata.posterior) == kept
    else:
        assert centred == ["log_beta", "a_pair", "k_pair"]
    health = stored_health(idata)
    assert health.verdict != BROKEN, health.line


def test_the_refit_of_a_partially_centred_fit_reverses_each_pairs_choice() -> None:
    """With partial centring, the refit samples every transfer pair in the parameterisation
    the first fit did not use, value by value, and keeps the exponents' choice."""
    frame, _ = simulate_pilots(languages=2, budgets=(1e7, 3e7), checkpoints=(1.0,), seed=3)
    table = validate_pilots(frame, "<simulated>")
    data, loss, _ = model_data(table)
    sampler = Sampler(chains=1, warmup=20, samples=20, map_starts=1, progress_bar=False)

    def centring(flip: tuple[str, ...]) -> dict[str, list[float]]:
        idata = sample_posterior(table, data, loss, Priors(), "source_saturating", sampler,
                                 (), flip)
        return json.loads(idata.posterior.attrs["centring"])

    first, again = centring(()), centring(("a_pair", "k_pair"))
    assert set(first) == set(POOLED_SITES)
    for site in ("a_pair", "k_pair"):
        assert again[site] == [1.0 - c for c in first[site]]
    assert again["log_beta"] == first["log_beta"]
