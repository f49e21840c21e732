"""The law's error in budget (climb_bayes.model.discrepancy): the integrated random walk's moments,
its place in the law, and how it reaches predictions of different mixes."""

from collections.abc import Callable
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer import Predictive

from climb_bayes.data.simulated import simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.model.discrepancy import (
    at_knots,
    beyond_knots,
    drift,
    exponent_beyond,
    fall_beyond,
    knot_states,
    without_trend,
)
from climb_bayes.model.fitting import Sampler, fit_posterior, model_data
from climb_bayes.model.health import BROKEN, stored_health
from climb_bayes.model.law import LawParams, expected_loss, self_map
from climb_bayes.model.loss_model import Discrepancy
from climb_bayes.model.numpyro_model import budget_knots, climb_model
from climb_bayes.model.posterior import posterior_from_idata, read_posterior
from climb_bayes.model.priors import Priors

KNOTS = jnp.array([0.0, 0.5, 1.2, 2.0])
TAU = 0.3
DRAWS = 100_000


@pytest.fixture(scope="module")
def paths() -> tuple[jax.Array, jax.Array, jax.Array]:
    """Many draws of the process at the knots, one target: level, slope and tau."""
    z = jax.random.normal(jax.random.PRNGKey(1), (DRAWS, 1, len(KNOTS) - 1, 2))
    sd = jnp.full((DRAWS, 1), TAU)
    level, slope = knot_states(sd, z, KNOTS)
    return level, slope, sd


def test_the_knot_states_have_the_moments_of_an_integrated_wiener_process(paths) -> None:
    level, slope, _ = paths
    u = np.asarray(KNOTS)  # distance from the first knot, where the process starts at 0
    assert np.var(level[:, 0], axis=0) == pytest.approx(TAU**2 * u**3 / 3, rel=0.03, abs=1e-9)
    assert np.var(slope[:, 0], axis=0) == pytest.approx(TAU**2 * u, rel=0.03, abs=1e-9)
    covariance = np.cov(level[:, 0, -1], slope[:, 0, -1])[0, 1]
    assert covariance == pytest.approx(TAU**2 * u[-1] ** 2 / 2, rel=0.03)
    # increments over disjoint steps are independent: Cov(slope_1, slope_3 - slope_2) = 0
    assert abs(np.cov(slope[:, 0, 1], slope[:, 0, 3] - slope[:, 0, 2])[0, 1]) < 3e-3


def test_beyond_the_knots_the_variance_grows_like_the_cube_of_the_distance(paths) -> None:
    level, slope, sd = paths
    u = jnp.array([-1.0, 0.0, 1.2, 3.0, 4.0])
    noise = jax.random.normal(jax.random.PRNGKey(2), sd.shape)
    steep = jnp.full(sd.shape, 50.0)  # a wander small beside the exponent: its first order
    delta = np.asarray(beyond_knots(level, slope, KNOTS, u, steep, sd * noise, sd))[..., 0]
    assert (delta[:, :2] == 0).all()  # zero and flat up to the pilots' smallest budget
    np.testing.assert_allclose(delta[:, 2], level[:, 0, 2], atol=1e-6)  # a knot is its level
    for column, at in ((3, 3.0), (4, 4.0)):  # the process's variance at u from the start
        assert np.var(delta[:, column]) == pytest.approx(TAU**2 * at**3 / 3, rel=0.04)
    # conditional on the last knot: mean level + h * slope
    h = 1.0
    residual = delta[:, 3] - (level[:, 0, -1] + h * slope[:, 0, -1])
    assert np.var(residual) == pytest.approx(TAU**2 * h**3 / 3, rel=0.04)
    assert abs(np.mean(residual)) < 0.01


def test_budget_knots_are_the_distinct_budgets_and_points_find_theirs() -> None:
    tokens = np.array([0.5, 1.0, 2.0, 1.0004, 0.5, 2.0])
    knots, point_knot = budget_knots(tokens)
    np.testing.assert_allclose(np.exp(knots), [0.5, 1.0, 2.0], rtol=1e-3)
    assert point_knot.tolist() == [0, 1, 2, 1, 0, 2]
    level = jnp.array([[0.0, 0.1, 0.3]])  # one target
    np.testing.assert_allclose(at_knots(level, jnp.asarray(point_knot))[:, 0],
                               [0.0, 0.1, 0.3, 0.1, 0.0, 0.3])


def law_params() -> LawParams:
    """Two languages, no transfer."""
    return LawParams(E=jnp.array([2.0, 2.5]), B=jnp.array([1.0, 1.5]), beta=jnp.array([0.3, 0.4]),
                     a=jnp.zeros((2, 2)), k=jnp.zeros((2, 2)), eta=jnp.ones(2))


def test_the_discrepancy_scales_the_reducible_loss_only() -> None:
    shares = jnp.array([[0.5, 0.5], [0.9, 0.1]])
    tokens = jnp.array([1.0, 4.0])
    sm = jnp.asarray(self_map(["a", "b"], ["a", "b"]))
    base = expected_loss(law_params(), shares, tokens, sm)
    delta = jnp.array([[0.2, -0.1], [0.0, 0.3]])
    bent = expected_loss(law_params(), shares, tokens, sm, discrepancy=delta)
    E = law_params().E
    np.testing.assert_allclose(bent - E, (base - E) * np.exp(delta), rtol=1e-5)


def test_a_language_given_fewer_tokens_gets_a_wider_interval_beyond_the_pilots() -> None:
    """The same discrepancy draws (shared by every mix) move a starved language's loss more:
    the decision sees uncertainty that depends on the mix."""
    draws = 4000
    bend = Discrepancy(level=np.zeros((draws, 2, 2), np.float32),
                       slope=np.zeros((draws, 2, 2), np.float32),
                       sd=np.full((draws, 2), 0.1, np.float32),
                       shared_sd=np.zeros(draws, np.float32),
                       knots=np.array([0.0, 1.0], np.float32))
    budgets = jnp.log(jnp.array([10.0, 10.0]))  # both mixes 10x the reference budget
    delta = bend.at(budgets, jax.random.PRNGKey(0), np.full((draws, 2), 0.4, np.float32))
    assert delta.shape == (draws, 2, 2)
    np.testing.assert_allclose(delta[:, 0], delta[:, 1])  # shared by the two mixes
    shares = jnp.array([[0.5, 0.5], [0.95, 0.05]])
    sm = jnp.asarray(self_map(["a", "b"], ["a", "b"]))
    per_draw = jax.vmap(expected_loss, in_axes=(None, None, None, None, None, 0))
    losses = np.asarray(per_draw(law_params(), shares, jnp.full(2, 10.0), sm,
                                 "source_saturating", delta))
    width = np.quantile(losses, 0.95, axis=0) - np.quantile(losses, 0.05, axis=0)
    assert width[1, 1] > 2.0 * width[0, 1]  # language b starved in mix 2
    assert width[1, 0] < width[0, 0]  # language a well fed in mix 2


def test_the_shared_part_moves_every_language_together_beyond_the_pilots() -> None:
    """delta_i = delta_0 + delta~_i: beyond the last knot the languages' errors correlate by
    tau_0^2 / (tau_0^2 + tau_i^2), so a mix's average loss keeps the shared part's spread."""
    draws, targets = 40_000, 4
    own, shared = 0.1, 0.2
    bend = Discrepancy(level=np.zeros((draws, targets, 2), np.float32),
                       slope=np.zeros((draws, targets, 2), np.float32),
                       sd=np.full((draws, targets), own, np.float32),
                       shared_sd=np.full(draws, shared, np.float32),
                       knots=np.array([0.0, 1.0], np.float32))
    h = 2.0  # e-folds beyond the last knot
    steep = np.full((draws, targets), 50.0, np.float32)  # the wander's first order
    delta = np.asarray(bend.at(jnp.array([1.0 + h]), jax.random.PRNGKey(3), steep))[:, 0]
    growth = h**3 / 3
    assert np.var(delta[:, 0]) == pytest.approx((own**2 + shared**2) * growth, rel=0.04)
    correlation = np.corrcoef(delta[:, 0], delta[:, 1])[0, 1]
    assert correlation == pytest.approx(shared**2 / (shared**2 + own**2), abs=0.02)
    average = delta.mean(axis=1)  # the own parts average away, the shared part does not
    assert np.var(average) == pytest.approx((shared**2 + own**2 / targets) * growth, rel=0.04)


BENT_BUDGETS = (1e7, 3e7, 1e8, 3e8)
BEND = 0.04  # every reducible loss times exp(BEND (u - mean u)^2): an exponent drift of 0.08


def bent_pilots() -> tuple[pd.DataFrame, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Pilots at four budgets whose curves all flatten alike, and the truth that made them:
    ``truth(shares, tokens) -> (mix, target)``, the law's loss with every reducible part times
    ``exp(BEND (u - mean u)^2)``, ``u = ln D``."""
    table, world = simulate_pilots(languages=2, budgets=BENT_BUDGETS, checkpoints=(1.0,), seed=2)
    centre = np.log(BENT_BUDGETS).mean()
    floor = np.asarray(world.params.E)

    def bend(tokens: np.ndarray) -> np.ndarray:
        return np.exp(BEND * (np.log(tokens) - centre) ** 2)

    irreducible = table["language"].map(dict(zip(world.targets, floor, strict=True))).to_numpy()
    table["loss"] = irreducible + (table["loss"] - irreducible) * bend(table["tokens"].to_numpy())

    def truth(shares: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        law = world.law.predict_loss(shares, tokens)[0]
        return floor + (law - floor) * bend(tokens)[:, None]

    return table, truth


@pytest.mark.slow
@pytest.mark.study  # the shared part is opt-in; its recovery runs with the study-scale tests
def test_the_fit_finds_a_bend_shared_by_every_language() -> None:
    """Without the exponent's drift, the bent pilots' curvature goes to the random walks: the
    fit gives the shared part ``tau_0`` a larger intensity than any language's own (both with
    the same prior), and its recorded bend is the same convex curve for every language."""
    table, _ = bent_pilots()
    priors = Priors(run_sd_fraction=0.0, discrepancy_shared_scale=Priors().discrepancy_scale,
                    exponent_drift_scale=0.0)
    idata = fit_posterior(validate_pilots(table), priors, "source_saturating",
                          Sampler(chains=2, warmup=300, samples=300, map_starts=2,
                                  progress_bar=False))
    posterior = idata.posterior
    shared = posterior["discrepancy_shared_sd"].median().item()
    own = posterior["discrepancy_sd"].median(dim=("chain", "draw")).to_numpy()
    assert (shared > own).all(), (shared, own)
    bend = posterior["discrepancy"].median(dim=("chain", "draw")).to_numpy()  # (target, knot)
    assert (np.diff(bend, n=2, axis=1) > 0).all()  # convex: the curves flatten
    assert np.ptp(bend[:, 0]) < 0.5 * np.abs(bend[:, 0]).mean()  # alike across languages


@pytest.mark.slow
def test_the_drift_is_recovered_and_carries_the_bend_ten_times_beyond() -> None:
    """With the default priors the fit recovers the exponent's drift of the bent pilots
    (``2 BEND``) and predicts the truth 10x beyond the largest pilot inside its 90% intervals;
    the same draws continuing only the random walk's last slope fall short of it."""
    table, truth = bent_pilots()
    idata = fit_posterior(validate_pilots(table), Priors(run_sd_fraction=0.0),
                          "source_saturating", Sampler(chains=2, warmup=200, samples=200,
                                                       map_starts=2, progress_bar=False))
    assert stored_health(idata).verdict != BROKEN
    law = posterior_from_idata(idata).law
    assert law.bend is not None and law.bend.curvature is not None
    low, high = np.quantile(law.bend.curvature, [0.05, 0.95], axis=0)
    assert ((low < 2 * BEND) & (2 * BEND < high)).all(), (low, high)
    shares = np.array([[0.5, 0.5], [0.8, 0.2], [0.2, 0.8]])
    tokens = np.full(len(shares), 10 * BENT_BUDGETS[-1])
    true = truth(shares, tokens)
    low, high = np.quantile(law.predict_loss(shares, tokens), [0.05, 0.95], axis=0)
    assert ((low < true) & (true < high)).all(), (low, true, high)
    straight = replace(law, bend=law.bend._replace(curvature=None))
    assert (np.median(straight.predict_loss(shares, tokens), axis=0) < true).all()


def test_the_trend_is_removed_and_the_bend_kept() -> None:
    """A straight line in ln D is what the law's B and beta describe: it leaves nothing."""
    knots = jnp.array([0.0, 1.0, 2.0, 3.0])
    line = 0.4 - 0.2 * knots
    level, slope = without_trend(line[None], jnp.full((1, 4), -0.2), knots)
    np.testing.assert_allclose(level, 0.0, atol=1e-6)
    np.testing.assert_allclose(slope, 0.0, atol=1e-6)
    bend = 0.1 * (knots - 1.5) ** 2
    level, _ = without_trend((line + bend)[None], jnp.zeros((1, 4)), knots)
    np.testing.assert_allclose(level[0], bend - bend.mean(), atol=1e-6)  # a parabola stays


def test_a_parabola_is_removed_when_the_drift_owns_it() -> None:
    knots = jnp.array([0.0, 0.7, 1.5, 3.0])
    parabola = 0.3 - 0.2 * knots + 0.1 * knots**2
    level, slope = without_trend(parabola[None], (-0.2 + 0.2 * knots)[None], knots, degree=2)
    np.testing.assert_allclose(level, 0.0, atol=1e-5)
    np.testing.assert_allclose(slope, 0.0, atol=1e-5)
    cubic = 0.05 * (knots - 1.0) ** 3  # what a parabola cannot describe stays
    level, _ = without_trend((parabola + cubic)[None], jnp.zeros((1, 4)), knots, degree=2)
    assert np.abs(np.asarray(level)).max() > 1e-3
    np.testing.assert_allclose(np.asarray(level).sum(), 0.0, atol=1e-6)


def test_the_drift_keeps_bending_beyond_the_knots_and_never_turns_the_loss_up() -> None:
    """A curve ``gamma u^2 / 2`` seen at three knots, less its line there: just beyond them
    the drift continues the pilots' curvature, where the random walk alone continues only
    their last slope; far beyond, a falling exponent of the reducible loss decays
    geometrically, ``b exp(-gamma h / b)``, and never crosses zero, where a constant drift
    would turn the loss upward; a rising one keeps rising as the pilots show."""
    knots = jnp.array([-1.0, 0.0, 1.0])
    gamma, beta = 0.12, 0.3
    unit_level, unit_slope = drift(knots)
    level, slope = gamma * unit_level[None], gamma * unit_slope[None]
    b = beta - float(slope[0, -1])  # the reducible loss's exponent at the last knot
    no_wander, exponent = jnp.zeros((1,)), jnp.array([beta])
    h = np.array([0.01, 0.05, 1.0, 2.3, 5.0, 10.0, 30.0])
    u = jnp.asarray(1.0 + h)
    bent = np.asarray(beyond_knots(level, slope, knots, u, exponent, no_wander, no_wander,
                                   jnp.array([gamma])))[:, 0]
    straight = np.asarray(beyond_knots(level, slope, knots, u, exponent, no_wander,
                                       no_wander))[:, 0]
    # just beyond the knots: the pilots' curvature, gamma h^2 / 2
    np.testing.assert_allclose((bent - straight)[:2], gamma * h[:2] ** 2 / 2, rtol=0.02)
    # everywhere: the closed form of the geometric decay
    x = gamma * h / b
    np.testing.assert_allclose(bent - straight, b * h * (1 - (1 - np.exp(-x)) / x), rtol=1e-4)
    assert straight[3] < bent[3] - 0.15  # 2.3 e-folds out the slope alone falls short
    # the reducible loss ln(L - E) = ... - beta u + delta(u) never rises ...
    grid = jnp.linspace(1.0, 40.0, 400)
    path = np.asarray(beyond_knots(level, slope, knots, grid, exponent, no_wander, no_wander,
                                   jnp.array([gamma])))[:, 0] - beta * np.asarray(grid)
    assert (np.diff(path) < 1e-5).all()  # (float32: flat to 1e-6 where it has levelled off)
    # ... where the drift carried on unchanged would: its exponent crosses zero b / gamma out
    constant = straight + gamma * h ** 2 / 2 - beta * np.asarray(u)
    assert constant[-1] > constant[3]
    # a steepening curve (gamma < 0) keeps steepening as the pilots show, gamma h^2 / 2
    steep = np.asarray(beyond_knots(-level, -slope, knots, u, exponent, no_wander, no_wander,
                                    jnp.array([-gamma])))[:, 0]
    np.testing.assert_allclose(steep - np.asarray(beyond_knots(-level, -slope, knots, u,
                                                               exponent, no_wander,
                                                               no_wander))[:, 0],
                               -gamma * h ** 2 / 2, rtol=1e-4, atol=1e-6)
    # inside the knots the levels are interpolated, the same with or without the drift
    inside = jnp.array([0.5])
    np.testing.assert_allclose(
        beyond_knots(level, slope, knots, inside, exponent, no_wander, no_wander,
                     jnp.array([gamma])),
        beyond_knots(level, slope, knots, inside, exponent, no_wander, no_wander))


def test_beyond_the_knots_the_wander_moves_the_exponent_and_never_turns_a_loss_up() -> None:
    """A wander as large as the exponent: the walk's own continuation, ``w sqrt(h^3 / 3)``,
    turns many draws' loss upward within ten e-folds; the wander on the exponent's logarithm
    keeps every draw falling, with the same mean of ``ln(L - E)`` (the lognormal factor has
    mean 1), and the fall is the integral of the exponent (quadrature against a fine grid)."""
    draws, beta, tau = 20_000, 0.4, 0.3
    knots = jnp.array([0.0, 1.0])
    level = jnp.zeros((draws, 1, 2))
    slope = jnp.full((draws, 1, 2), 0.05)  # the exponent at the last knot: 0.35
    exponent, sd = jnp.full((draws, 1), beta), jnp.full((draws, 1), tau)
    wander = sd * jax.random.normal(jax.random.PRNGKey(4), sd.shape)
    grid = jnp.linspace(1.0, 11.0, 201)
    path = np.asarray(beyond_knots(level, slope, knots, grid, exponent, wander, sd))[..., 0]
    reducible = path - beta * np.asarray(grid)  # ln(L - E) up to a constant
    assert (np.diff(reducible, axis=1) < 1e-5).all()
    h = np.asarray(grid) - 1.0
    additive = 0.05 * h + np.asarray(wander) * np.sqrt(h ** 3 / 3) - beta * h
    assert (np.diff(additive, axis=1) > 0).any(axis=1).mean() > 0.2
    line = 0.05 * h  # the last knot's line: the mean the wander keeps
    standard_error = path.std(axis=0) / np.sqrt(draws)
    assert (np.abs(path.mean(axis=0) - line) < 4 * standard_error + 1e-4).all()
    # the fall is the integral of the exponent, steep and flat draws alike
    b0 = jnp.array([0.35, 0.35, 0.05, 1.2])
    gamma = jnp.array([0.1, -0.05, 0.02, 0.0])
    w = jnp.array([0.6, -0.4, 0.3, -1.5])
    wsd = jnp.array([0.3, 0.3, 0.3, 0.5])
    for reach in (0.3, 2.3, 9.0):
        fine = jnp.linspace(0.0, reach, 200_001)[:, None]
        rate = np.asarray(exponent_beyond(b0, gamma, w, wsd, fine), np.float64)
        integral = np.sum((rate[1:] + rate[:-1]) / 2, axis=0) * reach / 200_000
        np.testing.assert_allclose(fall_beyond(b0, gamma, w, wsd, jnp.array([reach])),
                                   integral, rtol=2e-3)


def test_the_bend_is_the_walk_plus_the_drift_and_each_can_be_left_out() -> None:
    """Prior draws of the model: the recorded bend at the knots is the drift's parabola times
    ``gamma_i`` plus the walks (which then have no parabola left at three knots); without the
    walks it is the drift alone, and without both there is no bend."""
    frame, _ = simulate_pilots(languages=2, budgets=(1e7, 3e7, 1e8), checkpoints=(1.0,), seed=1)
    data, _, _ = model_data(validate_pilots(frame, "<simulated>"))
    unit, _ = drift(jnp.asarray(data.knots))

    def draws(**priors: float) -> dict[str, np.ndarray]:
        return {name: np.asarray(value) for name, value in Predictive(climb_model, num_samples=200)(
            jax.random.PRNGKey(5), data=data, priors=Priors(run_sd_fraction=0.0, **priors)).items()}

    both = draws()
    drift_part = both["exponent_drift"][..., None] * np.asarray(unit)
    np.testing.assert_allclose(both["discrepancy"], drift_part, atol=1e-5)  # 3 knots: no walk left
    walk_slope = both["discrepancy_slope"] - both["exponent_drift"][..., None] * np.asarray(
        drift(jnp.asarray(data.knots))[1])
    assert np.std(walk_slope) > 1e-3  # but the walks' slopes still carry their uncertainty
    alone = draws(discrepancy_scale=0.0)
    assert "discrepancy_sd" not in alone and "discrepancy_innovation" not in alone
    np.testing.assert_allclose(alone["discrepancy"],
                               alone["exponent_drift"][..., None] * np.asarray(unit), atol=1e-6)
    assert "discrepancy" not in draws(discrepancy_scale=0.0, exponent_drift_scale=0.0)
    walk = draws(exponent_drift_scale=0.0)
    assert "exponent_drift" not in walk and np.std(walk["discrepancy"]) > 1e-3


def test_the_drift_is_a_fraction_of_each_exponent() -> None:
    """``gamma_i = beta_i g_i``: over 4000 prior draws ``g_i = gamma_i / beta_i`` has the mean
    ``exponent_drift_centre`` and the sd ``scale * sqrt(1 + spread^2)`` whatever ``beta_i``
    (independent of it: correlation near 0), while ``gamma_i`` itself grows with ``beta_i``."""
    frame, _ = simulate_pilots(languages=3, budgets=(1e7, 3e7, 1e8), checkpoints=(1.0,), seed=1)
    data, _, _ = model_data(validate_pilots(frame, "<simulated>"))
    priors = Priors(run_sd_fraction=0.0, discrepancy_scale=0.0)
    draws = Predictive(climb_model, num_samples=4000)(jax.random.PRNGKey(6), data=data,
                                                      priors=priors)
    beta = np.asarray(draws["beta"], np.float64).ravel()
    gamma = np.asarray(draws["exponent_drift"], np.float64).ravel()
    g = gamma / beta
    sd = priors.exponent_drift_scale * np.sqrt(1 + priors.exponent_drift_spread ** 2)
    # 12000 values, correlated within a draw through g: standard errors about 0.003 and 0.002
    assert abs(g.mean() - priors.exponent_drift_centre) < 0.015
    assert abs(g.std() - sd) < 0.1 * sd
    assert abs(np.corrcoef(g, np.log(beta))[0, 1]) < 0.05
    assert np.corrcoef(np.abs(gamma), np.log(beta))[0, 1] > 0.2


def test_the_solver_sees_the_same_draws_as_the_predictions(fitted) -> None:
    """``Law.at_budget`` folds delta into B: the law at those parameters is the prediction."""
    law = read_posterior(fitted.posterior).law
    assert law.bend is not None
    tokens = 30 * law.pilot_tokens
    shares = np.full((1, len(law.sources)), 1 / len(law.sources))
    predicted = law.predict_loss(shares, np.array([tokens]))
    folded = law.at_budget(tokens)
    per_draw = jax.vmap(expected_loss, in_axes=(0, None, None, None, None))
    direct = np.asarray(per_draw(LawParams(*map(jnp.asarray, folded)), jnp.asarray(shares),
                                 jnp.array([tokens / law.reference]),
                                 jnp.asarray(law.self_map), law.form))
    np.testing.assert_allclose(direct, predicted, rtol=1e-4)
    assert not np.allclose(folded.B, law.params.B)  # 30x beyond: delta is not zero
