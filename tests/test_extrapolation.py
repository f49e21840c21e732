"""The law's error beyond the pilots (``law.extrapolation_sd``, Law.extrapolation_error):
its size and shape, that it leaves the differences between mixes alone, and that fit, predict
and solve carry it from the config to the intervals."""

from dataclasses import replace

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest

from climb_bayes.decide.tables import comparison_table, weighted_loss_draws
from climb_bayes.errors import INPUT_ERROR_STATUS
from climb_bayes.inspect.sections import extrapolation_note
from climb_bayes.model.posterior import Posterior, read_posterior
from climb_bayes.predict import predict

SD = 0.05  # nats per e-fold
MIXES = pd.DataFrame({"mix": ["uniform", "posterior_mean", "fr_heavy"],
                      "share_en": [1 / 3, 0.6, 0.2], "share_de": [1 / 3, 0.2, 0.2],
                      "share_fr": [1 / 3, 0.2, 0.6]})


@pytest.fixture(scope="module")
def posterior(fitted) -> Posterior:
    return read_posterior(fitted.posterior)


def with_law(posterior: Posterior, **changes) -> Posterior:
    """The posterior with its law's fields ``changes`` replaced."""
    return replace(posterior, law=replace(posterior.law, **changes))


def shares_of(posterior: Posterior) -> np.ndarray:
    return MIXES[[f"share_{s}" for s in posterior.sources]].to_numpy()


def test_the_posterior_knows_its_largest_pilot_budget(posterior, fitted) -> None:
    assert posterior.law.pilot_tokens == float(fitted.frame["tokens"].max())
    assert posterior.law.extrapolation_sd == 0.0  # the default config trusts the law


def test_error_is_zero_inside_the_pilots_and_grows_with_log_budget(posterior) -> None:
    budgets = posterior.law.pilot_tokens * np.array([0.1, 1.0, np.e, np.e ** 3])
    law = replace(posterior.law, extrapolation_sd=SD)
    error = np.asarray(law.extrapolation_error(budgets, jax.random.PRNGKey(1)))
    assert error.shape == (len(posterior.sigma), len(budgets), len(posterior.targets))
    np.testing.assert_array_equal(error[:, :2], 0.0)
    # one slope per draw and language: the error at 3 e-folds is 3x the error at 1 e-fold
    np.testing.assert_allclose(error[:, 3], 3.0 * error[:, 2], rtol=1e-5, atol=1e-7)
    # slope ~ Normal(0, SD^2): 300 draws x 3 languages pin its sd to about 4%
    slopes = error[:, 2].ravel()
    assert np.std(slopes) == pytest.approx(SD, rel=0.12)
    assert abs(np.mean(slopes)) < 4 * SD / np.sqrt(slopes.size)


def test_error_moves_every_mix_together(posterior) -> None:
    target = np.full(len(MIXES), 30 * posterior.law.pilot_tokens)
    shares = shares_of(posterior)
    law = posterior.law.predict_loss(shares, target)
    widened = with_law(posterior, extrapolation_sd=SD)
    losses = widened.law.predict_loss(shares, target)
    # the same draw of the error for every mix: differences between mixes are the law's
    np.testing.assert_allclose(np.diff(losses, axis=1), np.diff(law, axis=1), atol=1e-5)
    assert np.all(losses.std(0) > law.std(0))
    # so the decision's numbers: same gains over uniform, wider intervals of the weighted loss
    weights = np.full(len(posterior.targets), 1 / len(posterior.targets))
    names = list(MIXES["mix"])
    tables = []
    for p in (posterior, widened):
        weighted = weighted_loss_draws(p, shares, target[0], weights)[1]
        tables.append(comparison_table(names, shares, weighted, posterior.sources, "uniform",
                                       weighted.min(axis=1), 0.01))
    for column in ("gain_mean", "p_gain", "p_near_optimal"):
        np.testing.assert_allclose(tables[0][column], tables[1][column], atol=1e-5)
    widths = [t["weighted_loss_q95"] - t["weighted_loss_q05"] for t in tables]
    assert np.all(widths[1] > widths[0])


def test_predict_widens_only_beyond_the_pilots(posterior) -> None:
    budgets = np.repeat([0.5 * posterior.law.pilot_tokens, 100 * posterior.law.pilot_tokens], 3)
    mixes = pd.concat([MIXES, MIXES], ignore_index=True)
    plain = predict(posterior, mixes, budgets, seed=3)
    widened = predict(with_law(posterior, extrapolation_sd=SD), mixes, budgets, seed=3)
    inside = plain["tokens"] < posterior.law.pilot_tokens
    for low, high in (("q05", "q95"), ("pred_q05", "pred_q95")):
        plain_width = plain[high] - plain[low]
        width = widened[high] - widened[low]
        np.testing.assert_allclose(width[inside], plain_width[inside], rtol=1e-6)
        # 4.6 e-folds x 0.05 = 0.23 nats sd: a 90% interval at least 2 x 1.645 x 0.23 wide
        assert np.all(width[~inside] > 2 * 1.645 * SD * np.log(100) * 0.9)


def test_the_report_says_what_the_intervals_carry(posterior) -> None:
    assert "learned error in budget" in extrapolation_note(posterior)
    assert "trust the law itself" in extrapolation_note(with_law(posterior, bend=None))
    note = extrapolation_note(with_law(posterior, extrapolation_sd=SD))
    assert f"{posterior.law.pilot_tokens:.3g} tokens" in note and "0.05 nats per e-fold" in note


def test_the_setting_travels_with_the_posterior_file(fitted, tmp_path) -> None:
    idata = az.from_netcdf(str(fitted.posterior))
    assert idata.posterior.attrs["extrapolation_sd"] == 0.0
    idata.posterior.attrs["extrapolation_sd"] = SD
    copy = tmp_path / "posterior.nc"
    idata.to_netcdf(str(copy))
    assert read_posterior(copy).law.extrapolation_sd == SD


def test_fit_rejects_a_negative_setting(cli, fitted, tmp_path) -> None:
    output = tmp_path / "out"
    result = cli("climb_bayes.fit", f"pilots={fitted.pilots}", f"output={output}",
                 "law.extrapolation_sd=-0.1", "sampler.progress_bar=false")
    assert result.returncode == INPUT_ERROR_STATUS, result.stderr[-3000:]
    assert "law.extrapolation_sd" in result.stderr and "-0.1" in result.stderr
    assert not output.exists() or list(output.iterdir()) == []
