"""Losses of a training language on runs with none of it (``untrained`` in ``conf/fit.yaml``).

A monolingual pilot evaluated on the other training languages measures their loss from
transfer alone. On real pilots those losses sit at or above the uniform guess and several rise
with the budget, which the law cannot follow; the fit leaves them out by default
(:func:`climb_bayes.model.fitting.pilot_rows`). These tests check which rows go, and that the
fit recovers the law from the rest when those losses are off the law.
"""

import numpy as np
import pandas as pd
import pytest

from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.fitting import Sampler, fit_posterior, pilot_rows
from climb_bayes.model.posterior import read_posterior, save_posterior
from climb_bayes.model.priors import Priors


def table(rows: list[tuple[str, float, str, float, float]]) -> pd.DataFrame:
    """A pilot table with sources de and en; rows of (run, tokens, language, share_de, loss)."""
    return pd.DataFrame([{"run_id": run, "tokens": tokens, "language": language, "loss": loss,
                          "share_de": de, "share_en": 1.0 - de}
                         for run, tokens, language, de, loss in rows])


def test_only_a_trained_language_on_a_run_without_it_is_untrained() -> None:
    """de on the en-only run and en on the de-only run are untrained; each run's own
    language and sw (evaluated, never trained: no share column) stay, and so does every
    loss of the mixed run."""
    frame = table([("en-only", 1e6, "de", 0.0, 7.1), ("en-only", 1e6, "en", 0.0, 3.0),
                   ("en-only", 1e6, "sw", 0.0, 6.5), ("de-only", 1e6, "de", 1.0, 3.2),
                   ("de-only", 1e6, "en", 1.0, 6.9), ("de-only", 1e6, "sw", 1.0, 6.6),
                   ("mix", 1e6, "de", 0.3, 3.5), ("mix", 1e6, "en", 0.3, 3.3),
                   ("mix", 1e6, "sw", 0.3, 6.4)])
    pilots = validate_pilots(frame)
    assert pilots.untrained().tolist() == [True, False, False, False, True, False,
                                           False, False, False]
    kept = pilot_rows(pilots)
    assert len(kept.frame) == 7 and kept.targets == pilots.targets
    assert not kept.untrained().any()
    assert pilot_rows(pilots, untrained="keep").frame.equals(pilots.frame)


def test_a_language_no_run_trains_on_is_kept_as_evaluation_only() -> None:
    """A share column that is 0 in every run: all its losses come from transfer, and
    dropping them would leave the language without data."""
    frame = table([("a", 1e6, "de", 0.0, 7.0), ("a", 1e6, "en", 0.0, 3.0),
                   ("b", 2e6, "de", 0.0, 7.2), ("b", 2e6, "en", 0.0, 2.8)])
    assert not validate_pilots(frame).untrained().any()


@pytest.mark.slow
@pytest.mark.study  # two fits, one that mixes badly: about 5 minutes on 2 cores
def test_the_fit_recovers_the_law_when_untrained_losses_are_off_it(tmp_path) -> None:
    """Simulated pilots (3 languages, 2 budgets; the simulator evaluates a monolingual run on
    its own language only), with the other languages' losses of each monolingual run added as
    real pilots show them: about the uniform guess (ln 512 = 6.2 nats), rising with the budget,
    with 0.5 nats of scatter. Left out, the fit recovers the law: its noise stays at the
    simulator's and most true transfer values lie in their 90% intervals. Kept, they spoil the
    fit (chains that do not mix: R-hat above 1.01, ESS below 400, or split between transfer
    modes) or inflate its noise many times over: the failures the default avoids."""
    frame, world = simulate_pilots(languages=3, checkpoints=(1.0,), seed=3)
    rng = np.random.default_rng(0)
    monolingual = frame[frame["run_id"].str.contains("-only-")]
    added = [row._replace(language=other, loss=np.log(512) + 0.4 * np.log(row.tokens / 1e7)
                          + 0.5 * rng.standard_normal())
             for row in monolingual.itertuples(index=False)
             for other in world.targets if other != row.language]
    off_law = validate_pilots(pd.concat([frame, pd.DataFrame(added)], ignore_index=True))
    assert off_law.untrained().sum() == len(added) == 12
    sampler = Sampler(chains=2, warmup=300, samples=300, map_starts=2, progress_bar=False)
    fitted = {}
    for choice in ("drop", "keep"):
        idata = fit_posterior(pilot_rows(off_law, "all", choice), Priors(run_sd_fraction=0.0),
                              "source_saturating", sampler)
        save_posterior(idata, tmp_path / f"{choice}.nc")
        fitted[choice] = read_posterior(tmp_path / f"{choice}.nc", allow_broken=True)
    dropped = fitted["drop"]
    assert dropped.health.verdict != "broken", dropped.health.line
    noise = dropped.sigma.mean(0)
    assert np.all(noise < 2.0 * world.sigma), (noise, world.sigma)
    cross = dropped.law.self_map == 0
    low, high = np.quantile(dropped.law.params.a, [0.05, 0.95], axis=0)
    inside = ((world.params.a >= low) & (world.params.a <= high))[cross]
    assert inside.mean() >= 4 / 6, (inside, world.params.a[cross], low[cross], high[cross])
    kept = fitted["keep"]
    assert kept.health.verdict != "healthy" or kept.sigma.mean() > 4.0 * noise.mean(), (
        kept.health.line, kept.sigma.mean(0))
