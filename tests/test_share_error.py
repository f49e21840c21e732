"""The law's error below the shares the pilots measured (climb_bayes.model.share_error):
its size measured on losses at a share of 0, where predictions carry it, and what the solver
pays for it."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from climb_bayes.data.simulated import draw_world, simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.decide.objectives import Problem, objective, objective_data, objective_value
from climb_bayes.model.fitting import pilot_rows
from climb_bayes.model.law import LawParams
from climb_bayes.model.loss_model import Law
from climb_bayes.model.posterior import read_posterior
from climb_bayes.model.share_error import (
    DEFAULT_SHARE_SD,
    DEFAULT_SHARE_SD_GROWTH,
    MeasuredShares,
    measure_share_error,
    measured_sizes,
    share_error_excess,
    zero_share_rows,
)

LANGUAGES = ["en", "de", "fr"]


def law_of(seeds: range, smallest: np.ndarray, sd: float, repeat: int = 1) -> Law:
    """Simulated truths as the draws of one law, measured down to own shares ``smallest``
    (and, in effective share, nowhere: ``mt = 0``)."""
    params = [draw_world(np.random.default_rng(s), LANGUAGES, LANGUAGES, 1e8).params
              for s in seeds]
    stacked = LawParams(*(np.repeat(np.stack([np.asarray(p[i], np.float32) for p in params]),
                                    repeat, axis=0) for i in range(len(LawParams._fields))))
    measured = MeasuredShares(np.asarray(smallest), np.zeros(len(LANGUAGES)))
    return Law(stacked, 1e8, LANGUAGES, LANGUAGES, measured=measured, share_sd=sd)


def sizes_at(rows: int, sd: float, noise: float, seed: int, growth: float = 0.0,
             deepest: float = 0.0) -> tuple[float, float]:
    """``measured_sizes`` on ``rows`` losses at a share of 0, ``b ~ Uniform(0, deepest)``
    e-folds below the measured effective shares, whose reducible part is the law's times
    ``exp(u + e)``, ``e ~ Normal(0, s^2 + g^2 max(0, b - 1)^2)``, plus noise: the posterior's
    draws spread 0.05 in the log of it, and its mean is off the truth by as much (``u``), as a
    calibrated posterior's is."""
    rng = np.random.default_rng(seed)
    irreducible = np.full((200, rows), 2.0)
    reducible = rng.uniform(0.5, 1.5, rows)
    spread = rng.normal(0.0, 0.05, (200, rows))
    predicted = irreducible + reducible * np.exp(spread - spread.mean(0))
    offset, z, noise_draw = (rng.normal(0.0, 0.05, rows), rng.normal(0.0, 1.0, rows),
                             rng.normal(0.0, noise, rows))
    folds = rng.uniform(0.0, deepest, rows)
    error_sd = np.sqrt(sd ** 2 + growth ** 2 * np.maximum(0.0, folds - 1.0) ** 2)
    observed = 2.0 + reducible * np.exp(offset + z * error_sd) + noise_draw
    excess = share_error_excess(predicted, irreducible, np.full(rows, noise), observed)
    return measured_sizes(excess, folds)


@pytest.mark.parametrize("sd", [0.1, 0.5])
def test_the_size_of_the_error_is_recovered(sd: float) -> None:
    estimates = [sizes_at(30, sd, 0.02, seed)[0] for seed in range(30)]
    assert np.mean(estimates) == pytest.approx(sd, rel=0.1)


@pytest.mark.parametrize(("sd", "growth"), [(0.0, 0.12), (0.2, 0.12), (0.3, 0.0)])
def test_the_error_and_its_growth_with_depth_are_recovered(sd: float, growth: float) -> None:
    # losses at a share of 0 from near the measured effective shares to 7 e-folds below, as
    # the monolingual pilots give them; s and g fitted together
    estimates = np.array([sizes_at(40, sd, 0.02, seed, growth, 7.0) for seed in range(40)])
    assert np.mean(estimates[:, 0]) == pytest.approx(sd, abs=0.08)
    assert np.mean(estimates[:, 1]) == pytest.approx(growth, abs=0.025)


def test_no_error_where_the_law_holds_at_a_share_of_zero() -> None:
    estimates = [sizes_at(30, 0.0, 0.02, seed)[0] for seed in range(30)]
    # the posterior's own spread and the noise are taken out: what is left is sampling error
    assert np.quantile(estimates, 0.9) < 0.03


def test_no_error_where_the_law_holds_however_deep() -> None:
    estimates = np.array([sizes_at(30, 0.0, 0.02, seed, 0.0, 7.0) for seed in range(30)])
    # s and g fitted together trade off a little of the sampling error between them
    assert np.quantile(estimates[:, 0], 0.9) < 0.05
    assert np.quantile(estimates[:, 1], 0.9) < 0.015


def test_a_given_size_is_held_and_the_other_fitted() -> None:
    folds = np.linspace(0.0, 6.0, 13)
    excess = 0.04 + 0.01 * np.maximum(0.0, folds - 1.0) ** 2  # s = 0.2, g = 0.1 exactly
    assert measured_sizes(excess, folds) == pytest.approx((0.2, 0.1))
    assert measured_sizes(excess, folds, share_sd=0.2) == pytest.approx((0.2, 0.1))
    assert measured_sizes(excess, folds, share_sd_growth=0.1) == pytest.approx((0.2, 0.1))
    # nothing deeper than an e-fold: the growth is its prior, the default
    assert measured_sizes(excess, np.zeros(13))[1] == pytest.approx(DEFAULT_SHARE_SD_GROWTH)


@pytest.mark.parametrize(("growth", "largest_sd"), [(0.0, 0.05), (0.3, 0.1)])
def test_losses_barely_past_an_e_fold_leave_the_growth_near_its_prior(
        growth: float, largest_sd: float) -> None:
    # the only losses deeper than an e-fold lie at most half an e-fold past it, where
    # c_k = (b_k - 1)^2 <= 0.25: their excess cannot say how the error grows further down
    # (without the prior such rows gave g up to 0.8 where the law holds)
    estimates = np.array([sizes_at(30, 0.0, 0.02, seed, growth, 1.5) for seed in range(30)])
    assert np.all(np.abs(estimates[:, 1] - DEFAULT_SHARE_SD_GROWTH) < 0.03)
    # s still measured near the shares (a growth there, at most 0.15, partly counted in s)
    assert np.quantile(estimates[:, 0], 0.9) < largest_sd


def test_the_prior_on_the_growth_gives_way_to_losses_that_span_the_depth() -> None:
    # g = 0.3, three times the prior's: 40 losses down to 7 e-folds measure it
    estimates = np.array([sizes_at(40, 0.0, 0.02, seed, 0.3, 7.0) for seed in range(20)])
    assert np.mean(estimates[:, 1]) == pytest.approx(0.3, abs=0.03)


def test_a_prediction_carries_the_error_as_far_as_the_mix_goes_below() -> None:
    law = law_of(range(1), np.array([0.1, 0.1, 0.1]), 0.4, repeat=4000)
    bare = Law(law.params, 1e8, LANGUAGES, LANGUAGES)
    shares = np.array([[0.0, 0.5, 0.5], [0.0, 0.3, 0.7], [0.05, 0.45, 0.5], [0.4, 0.3, 0.3]])
    tokens = np.full(4, 1e9)
    key = jax.random.PRNGKey(3)
    with_error, without = law.predict_loss(shares, tokens, key), bare.predict_loss(shares, tokens)
    log_ratio = np.log((with_error - law.params.E[:, None, :])
                       / (without - law.params.E[:, None, :]))
    assert log_ratio[:, 0, 0].std() == pytest.approx(0.4, rel=0.05)  # en at 0: the full error
    # half way down to 0: a = 0.5, ramp^2 = u (2 - u) with u = a^2
    assert log_ratio[:, 2, 0].std() == pytest.approx(0.4 * np.sqrt(0.4375), rel=0.05)
    np.testing.assert_allclose(log_ratio[:, 3], 0.0, atol=1e-5)  # every share measured
    # one error per draw and language: two mixes that both drop en share it
    np.testing.assert_allclose(log_ratio[:, 0, 0], log_ratio[:, 1, 0], atol=1e-5)


def test_the_solver_pays_the_expected_error() -> None:
    smallest = np.array([0.1, 0.1, 0.1])
    law = law_of(range(3), smallest, 0.5)
    weights = np.full(3, 1 / 3)
    mix = np.array([0.0, 0.5, 0.5])
    with_error = Problem.at_budget(law, 1e9, weights, np.zeros(3), np.ones(3))
    bare = with_error._replace(share_sd=0.0)
    reducible = (Law(law.params, 1e8, LANGUAGES, LANGUAGES).predict_loss(
        mix[None], np.array([1e9]))[:, 0, 0] - law.params.E[:, 0])
    expected = np.mean(weights[0] * reducible) * (np.exp(0.5 ** 2 / 2) - 1.0)
    difference = objective_value(with_error, mix) - objective_value(bare, mix)
    assert difference == pytest.approx(expected, rel=1e-4)
    inside = np.array([0.2, 0.4, 0.4])  # every share measured: nothing to pay
    assert objective_value(with_error, inside) == pytest.approx(objective_value(bare, inside))


def test_the_rows_at_a_share_of_zero_are_the_monolingual_pilots_on_the_others() -> None:
    frame, _ = simulate_pilots(languages=3, seed=0, untrained=True)
    table = validate_pilots(frame)
    rows = zero_share_rows(table)
    own = np.array([rows.frame.loc[i, f"share_{language}"]
                    for i, language in enumerate(rows.frame["language"])])
    assert len(rows.frame) > 0 and np.all(own == 0.0)
    assert len(rows.frame) + len(pilot_rows(table).frame) == len(table.final_of_run().frame)


def test_a_fit_measures_the_error_and_stores_the_smallest_shares(fitted) -> None:
    posterior = read_posterior(fitted.posterior)
    attrs = posterior.idata.posterior.attrs
    # the session's pilots report no loss at a share of 0: the default
    assert int(attrs["share_sd_rows"]) == 0
    assert posterior.law.share_sd == float(attrs["share_sd"]) == DEFAULT_SHARE_SD
    assert posterior.law.share_sd_growth == DEFAULT_SHARE_SD_GROWTH
    # the same world's losses at a share of 0 (same draws: the noise is drawn for every row)
    frame, _ = simulate_pilots(languages=3, seed=0, untrained=True)
    rows = zero_share_rows(validate_pilots(frame), "all")
    measured = measure_share_error(posterior, rows)
    assert measured["share_sd_rows"] == len(rows.frame) > 0
    # a law world: the law holds at a share of 0, however deep (Data Mixing Laws worlds give
    # s up to 0.27 and g 0.11-0.14)
    assert measured["share_sd"] < 0.1 and measured["share_sd_growth"] < 0.07
    fixed = measure_share_error(posterior, rows, share_sd=0.2)
    assert fixed["share_sd"] == 0.2 and "law.share_sd given" in fixed["share_sd_from"]
    # only the losses within an e-fold of the measured effective shares: g is its prior
    target = pd.Index(posterior.targets).get_indexer(rows.frame["language"])
    effective = posterior.law.effective_share(
        rows.frame[rows.share_columns].to_numpy(), rows.frame["tokens"].to_numpy())
    effective = effective[:, np.arange(len(target)), target].mean(0)
    shallow = effective >= posterior.law.measured.effective[target] / np.e
    assert 0 < shallow.sum() < len(shallow)
    near = measure_share_error(posterior, replace(rows, frame=rows.frame[shallow]))
    assert near["share_sd_deep_rows"] == 0
    assert near["share_sd_growth"] == pytest.approx(DEFAULT_SHARE_SD_GROWTH)
    assert "the growth its prior" in near["share_sd_from"]
    fitted_rows = pilot_rows(validate_pilots(fitted.frame), "all").frame  # as the fixture fits
    for i, language in enumerate(posterior.targets):
        own = fitted_rows.loc[fitted_rows["language"] == language, f"share_{language}"]
        assert posterior.law.measured.own[i] == pytest.approx(own.min())
        rows = fitted_rows[fitted_rows["language"] == language]
        effective = posterior.law.effective_share(
            rows[[f"share_{source}" for source in posterior.sources]].to_numpy(),
            rows["tokens"].to_numpy())
        assert posterior.law.measured.effective[i] == pytest.approx(
            effective[:, :, i].min(axis=1).mean(), rel=1e-5)


def below_effective(smallest: float, shares: np.ndarray, repeat: int, growth: float = 0.0
                    ) -> tuple[Law, np.ndarray]:
    """A law whose pilots measured en down to the effective share ``smallest`` (and nothing
    else), with ``s = 0.4`` and ``g = growth``, and ``(draw, mix, target)``: the log of its
    reducible loss at ``shares`` over the bare law's, its share error alone."""
    law = law_of(range(1), np.zeros(3), 0.4, repeat=repeat)
    law = Law(law.params, 1e8, LANGUAGES, LANGUAGES,
              measured=MeasuredShares(np.zeros(3), np.array([smallest, 0.0, 0.0])), share_sd=0.4,
              share_sd_growth=growth)
    bare = Law(law.params, 1e8, LANGUAGES, LANGUAGES)
    tokens = np.full(len(shares), 1e9)
    return law, np.log((law.predict_loss(shares, tokens) - law.params.E[:, None, :])
                       / (bare.predict_loss(shares, tokens) - law.params.E[:, None, :]))


def test_an_effective_share_below_the_measured_one_carries_the_error_too() -> None:
    shares = np.array([[0.5, 0.25, 0.25], [0.65, 0.2, 0.15]])
    law, log_ratio = below_effective(1.0, shares, 2000)
    effective = law.effective_share(shares, np.full(2, 1e9))[:, :, 0]
    folds = np.minimum(np.log(effective) ** 2, 1.0)
    ramp = np.sqrt(folds * (2.0 - folds))  # e-folds below rt = 1, saturating at one
    assert 0.1 < ramp.min() and ramp.max() < 1.0
    z = log_ratio[:, :, 0] / (0.4 * ramp)
    np.testing.assert_allclose(z[:, 0], z[:, 1], atol=1e-3)  # one error, scaled by the ramp
    assert z[:, 0].std() == pytest.approx(1.0, rel=0.07)
    np.testing.assert_allclose(log_ratio[:, :, 1:], 0.0, atol=1e-5)


@pytest.mark.parametrize("growth", [0.0, 0.1])
def test_far_below_the_measured_shares_the_error_grows_as_measured(growth: float) -> None:
    # beyond an e-fold below the measured effective shares the error is s and then grows by g
    # per e-fold: sqrt(s^2 + g^2 (b - 1)^2), not s times the e-folds (a log-normal that wide
    # would put the mean loss far above any loss)
    shares = np.array([[0.5, 0.25, 0.25], [0.01, 0.5, 0.49]])
    law, log_ratio = below_effective(1e3, shares, 4000, growth)
    folds = np.log(1e3 / law.effective_share(shares, np.full(2, 1e9))[0, :, 0])
    assert np.all(folds > 6) and folds[1] > folds[0] + 0.5
    z = log_ratio[:, :, 0] / np.sqrt(0.4 ** 2 + growth ** 2 * (folds - 1.0) ** 2)
    assert z[:, 0].std() == pytest.approx(1.0, rel=0.05)
    np.testing.assert_allclose(z[:, 0], z[:, 1], atol=1e-4)  # one error per draw and language


def test_the_solver_gradient_is_finite_where_every_share_is_measured() -> None:
    law = law_of(range(3), np.array([0.1, 0.1, 0.1]), 0.5)
    law = Law(law.params, 1e8, LANGUAGES, LANGUAGES,
              measured=MeasuredShares(np.array([0.1, 0.1, 0.1]), np.array([0.01, 0.01, 0.01])),
              share_sd=0.5)
    problem = Problem.at_budget(law, 1e9, np.full(3, 1 / 3), np.zeros(3), np.ones(3))
    with jax.enable_x64(True):
        gradient = jax.grad(objective("mean", problem.form))(
            jnp.asarray([0.3, 0.3, 0.4]), objective_data(problem, problem.params))
    assert np.all(np.isfinite(np.asarray(gradient)))
