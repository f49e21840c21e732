"""The one object that predicts losses (:mod:`climb_bayes.model.loss_model`): every kind of law
answers ``predict_loss(shares, tokens) -> (draw, mix, target)`` with the law's own numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.worlds import (
    BentWorld,
    draw_bent_world,
    draw_dml_world,
    draw_prior_bent_world,
    true_optimum,
)
from climb_bayes.data.simulated import draw_world, simulate_pilots
from climb_bayes.data.validation import validate_pilots
from climb_bayes.decide.objectives import Problem
from climb_bayes.model.law import LawParams, expected_loss, self_map
from climb_bayes.model.loss_model import Discrepancy, Law

LANGUAGES = ["en", "de", "fr"]
SHARES = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1], [0.0, 0.5, 0.5]])
TOKENS = np.array([1e8, 3e8, 1e9])


def world(seed: int = 0):
    return draw_world(np.random.default_rng(seed), LANGUAGES, LANGUAGES, 1e8)


def draws(count: int, seed: int = 0) -> Law:
    """``count`` simulated truths stacked as the draws of one law (float32, as a posterior)."""
    params = [world(seed + s).params for s in range(count)]
    stacked = LawParams(*(np.stack([np.asarray(p[i], np.float32) for p in params])
                          for i in range(len(LawParams._fields))))
    return Law(stacked, 1e8, LANGUAGES, LANGUAGES)


def test_a_law_predicts_what_the_law_function_gives_for_each_draw() -> None:
    law = draws(4)
    losses = law.predict_loss(SHARES, TOKENS)
    assert losses.shape == (4, len(SHARES), len(LANGUAGES)) and losses.dtype == np.float32
    for d in range(4):
        one = LawParams(*(jnp.asarray(p[d]) for p in law.params))
        direct = expected_loss(one, jnp.asarray(SHARES, jnp.float32),
                               jnp.asarray(TOKENS / 1e8, jnp.float32),
                               jnp.asarray(self_map(LANGUAGES, LANGUAGES)))
        np.testing.assert_allclose(losses[d], direct, rtol=1e-6)


def test_float64_parameters_are_computed_in_float64() -> None:
    truth = world()
    losses = truth.predict_loss(SHARES, TOKENS)
    assert losses.shape == (1, len(SHARES), len(LANGUAGES)) and losses.dtype == np.float64
    with jax.enable_x64(True):
        direct = expected_loss(LawParams(*(jnp.asarray(p, jnp.float64) for p in truth.params)),
                               jnp.asarray(SHARES), jnp.asarray(TOKENS / 1e8),
                               jnp.asarray(self_map(LANGUAGES, LANGUAGES), jnp.float64))
    np.testing.assert_allclose(losses[0], direct, rtol=1e-12)


def test_the_misspecified_truth_answers_the_same_question() -> None:
    dml = draw_dml_world(np.random.default_rng(0), LANGUAGES, 1e8)
    losses = dml.predict_loss(SHARES, TOKENS)
    assert losses.shape == (1, len(SHARES), len(LANGUAGES))
    assert np.all(np.isfinite(losses)) and np.all(losses > 0)


def test_a_bent_truth_keeps_the_law_below_its_break_and_changes_the_exponent_beyond() -> None:
    truth = world()
    change = np.array([-0.1, 0.05, 0.15])
    bent_truth = BentWorld(truth, np.full(3, 1e9), change)
    E = np.asarray(truth.params.E)

    def reducible(b: BentWorld | object, tokens: float) -> np.ndarray:
        return b.predict_loss(SHARES, np.full(len(SHARES), tokens))[0] - E

    np.testing.assert_allclose(reducible(bent_truth, 1e6), reducible(truth, 1e6), rtol=1e-5)
    # Local exponents, d ln(L - E) / d ln D, far beyond the break: the law's plus the change.
    far, step = 1e14, 1.01
    slope = np.log(reducible(bent_truth, far * step) / reducible(bent_truth, far)) / np.log(step)
    law_slope = np.log(reducible(truth, far * step) / reducible(truth, far)) / np.log(step)
    np.testing.assert_allclose(slope - law_slope, np.tile(-change, (len(SHARES), 1)), atol=2e-3)


def test_a_bent_truth_is_a_law_at_any_one_budget() -> None:
    truth = draw_bent_world(np.random.default_rng(3), world(), 3e8, 3e9, change_sd=0.2)
    assert np.all(truth.break_tokens >= 3e8) and np.all(truth.break_tokens <= 3e9)
    assert np.all(np.asarray(truth.base.params.beta) + truth.exponent_change >= 0.05 - 1e-12)
    tokens = np.full(len(SHARES), 2e9)
    np.testing.assert_allclose(truth.at_budget(2e9).predict_loss(SHARES, tokens),
                               truth.predict_loss(SHARES, tokens), rtol=1e-10)
    # Its optimum at the target is where no feasible mix is better on the bent truth itself.
    weights = np.full(3, 1 / 3)
    best = true_optimum(truth, 2e9, weights, np.zeros(3), np.ones(3))
    others = np.random.default_rng(0).dirichlet(np.ones(3), 200)
    losses = truth.predict_loss(others, np.full(200, 2e9))[0] @ weights
    assert best.value <= losses.min() + 1e-9


def test_a_truth_bent_by_the_models_prior_is_its_draw_everywhere() -> None:
    """One draw of the fit's own bend: at the pilots' budgets every mix's reducible loss times
    ``exp(delta_i)`` of the drawn walk and drift (a draw with a visible bend), the same path at
    every call, never rising with more training beyond the pilots, a law at any one budget."""
    frame, law_world = simulate_pilots(languages=3, budgets=(3e6, 1e7, 3e7), seed=2)
    truth = draw_prior_bent_world(5, law_world, validate_pilots(frame))  # every checkpoint a knot
    gamma = np.asarray(truth.law.bend.curvature)[0]
    assert gamma.shape == (3,) and np.abs(gamma).max() > 0.01
    shares, E = SHARES[:2], np.asarray(law_world.params.E)
    level = np.asarray(truth.law.bend.level)[0]  # (target, knot)
    for knot, tokens in ((0, frame["tokens"].min()), (-1, 3e7)):  # each mix's reducible loss
        ratio = ((truth.predict_loss(shares, np.full(2, tokens)) - E)
                 / (law_world.predict_loss(shares, np.full(2, tokens)) - E))[0]
        np.testing.assert_allclose(ratio, np.tile(np.exp(level[:, knot]), (2, 1)), rtol=1e-4)
    assert np.abs(level).max() > 1e-3
    pilot = np.full(2, 3e7)
    budgets = np.geomspace(3e7, 3e11, 30)
    path = np.stack([truth.predict_loss(shares, np.full(2, b))[0] for b in budgets])
    assert (np.diff(path, axis=0) < 1e-6).all()
    np.testing.assert_array_equal(truth.predict_loss(shares, pilot),
                                  truth.predict_loss(shares, pilot))
    np.testing.assert_allclose(truth.at_budget(3e9).predict_loss(shares, np.full(2, 3e9)),
                               truth.predict_loss(shares, np.full(2, 3e9)), rtol=2e-5)


def bent(law: Law, sd: float) -> Law:
    """``law`` with a learned error in budget of scale ``sd`` bending at two knots."""
    count, targets = law.draws, len(law.targets)
    rng = np.random.default_rng(1)
    return Law(law.params, law.reference, law.sources, law.targets, law.form,
               Discrepancy(level=rng.normal(0, sd, (count, targets, 2)).astype(np.float32),
                           slope=rng.normal(0, sd, (count, targets, 2)).astype(np.float32),
                           sd=np.full((count, targets), sd, np.float32),
                           shared_sd=np.full(count, sd, np.float32),
                           knots=np.log(np.array([0.3, 1.0], np.float32))),
               pilot_tokens=1e8)


def test_thinning_keeps_the_chosen_draws() -> None:
    law = bent(draws(5), 0.1)
    keep = np.array([4, 1])
    inside = np.full(len(SHARES), 5e7)  # between the knots: no fresh noise
    np.testing.assert_allclose(law.thinned(keep).predict_loss(SHARES, inside),
                               law.predict_loss(SHARES, inside)[keep], rtol=1e-6)


def test_the_solver_problem_is_the_law_at_the_target_with_its_error_folded_in() -> None:
    law = bent(draws(3), 0.2)
    target = 1e9  # 2.3 e-folds beyond the last knot
    problem = Problem.at_budget(law, target, np.full(3, 1 / 3), np.zeros(3), np.ones(3))
    assert problem.tokens_scaled == pytest.approx(target / law.reference)
    folded = Law(LawParams(*(np.asarray(p, np.float32) for p in problem.params)),
                 law.reference, law.sources, law.targets)
    at_target = np.full(len(SHARES), target)
    np.testing.assert_allclose(folded.predict_loss(SHARES, at_target),
                               law.predict_loss(SHARES, at_target), rtol=1e-5)
    assert not np.allclose(problem.params.B, law.params.B)
