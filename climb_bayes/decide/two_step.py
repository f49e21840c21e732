"""The paper's two-step procedure (CLIMB) on the point estimate, :func:`two_step_mix`.

Step 1 is the curve of effective shares with equal weighted marginal benefits
(:func:`equal_benefit_curve`); step 2 the largest point on it that a feasible mix reaches,
found by minimising the shortfall of the effective shares from a target on the curve. Notation
of :mod:`climb_bayes.decide.objectives`.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from climb_bayes.decide.objectives import (
    DEFAULT_SETTINGS,
    Problem,
    Settings,
    objective_data,
    point_estimate,
    solve_on_simplex,
)
from climb_bayes.model.law import LawParams, effective_share

Array = jax.Array


def weighted_benefit(params: LawParams, tokens_scaled: float, weights: np.ndarray
                     ) -> np.ndarray:
    """``g_i = w_i beta_i B_i (D/D_ref)^(-beta_i)``: the weighted marginal benefit of effective
    share at ``rt_i = 1``; ``params`` is one draw (no draw axis)."""
    beta = np.asarray(params.beta, np.float64)
    return weights * beta * np.asarray(params.B, np.float64) * tokens_scaled ** (-beta)


def equal_benefit_curve(params: LawParams, tokens_scaled: float, weights: np.ndarray,
                        lam: float) -> np.ndarray:
    """Effective shares where every weighted marginal benefit equals ``lam``.

    ``g_i rt_i^(-beta_i - 1) = lam`` (:func:`weighted_benefit`) gives
    ``rt_i(lam) = (g_i / lam)^(1 / (beta_i + 1))``. ``params`` is one draw (no draw axis).
    """
    beta = np.asarray(params.beta, np.float64)
    return (weighted_benefit(params, tokens_scaled, weights) / lam) ** (1.0 / (beta + 1.0))


@functools.cache
def _shortfall(form: str) -> Callable[[Array, Any], Array]:
    """``sum_i max(0, rt_i^target - rt_i(r))^2``: how far ``r`` falls short of the target."""

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, target = data
        rt = effective_share(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)),
                             self_map, form)[0]
        return jnp.sum(jnp.maximum(target - rt, 0.0) ** 2)

    return f


class TwoStep(NamedTuple):
    """The two-step mix and the multiplier ``lam`` of the curve point it reaches."""

    shares: np.ndarray
    lam: float
    target: np.ndarray  # rt(lam), the effective shares aimed at


@functools.cache
def _minus_effective_share(form: str) -> Callable[[Array, Any], Array]:
    """``-rt_j(r)`` for the language picked by the one-hot ``pick``: minimised, the most
    effective share ``j`` can get from a feasible mix."""

    def f(shares: Array, data: tuple[Any, ...]) -> Array:
        params, tokens_scaled, self_map, pick = data
        rt = effective_share(params, shares[None, :], jnp.reshape(tokens_scaled, (1,)),
                             self_map, form)[0]
        return -jnp.sum(pick * rt)

    return f


#: Relative shortfall below which a target counts as reached when probing a cap: the
#: interior-point barrier keeps a share ~1e-8 short of a target that sits close to its cap.
CAP_REACH_TOLERANCE = 1e-6
#: A cap is probed at this factor above the ``lam`` where its language runs out of room.
CAP_PROBE = 1.01


def _reach(problem: Problem, params: LawParams, lam: float, free: np.ndarray,
           settings: Settings, tolerance: float = 1e-8) -> tuple[bool, np.ndarray, np.ndarray]:
    """Is ``rt(lam)`` reachable by a feasible mix on the ``free`` languages, to a relative
    shortfall of ``tolerance``? And the closest mix. The other languages aim at nothing."""
    target = np.where(free, equal_benefit_curve(params, problem.tokens_scaled, problem.weights,
                                                lam), 0.0)
    shares, value = _solve_on_law(_shortfall(problem.form), problem, params, target, settings)
    return value <= tolerance ** 2 * float(np.sum(target ** 2)), shares, target


def _solve_on_law(f: Callable[[Array, Any], Array], problem: Problem, params: LawParams,
                  extra: np.ndarray, settings: Settings) -> tuple[np.ndarray, float]:
    """Minimise ``f(r, (params, tokens_scaled, self_map, extra))`` over the problem's feasible
    mixes; the minimiser and ``f`` there."""
    with jax.enable_x64(True):
        data = (*objective_data(problem, params)[:3], jnp.asarray(extra, jnp.float64))
        solution = solve_on_simplex(f, data, jnp.asarray(problem.lower, jnp.float64),
                          jnp.asarray(problem.upper, jnp.float64),
                          tol=settings.tol, max_iter=settings.max_iter)
        return np.asarray(solution.x), float(f(solution.x, data))


def _room(problem: Problem, params: LawParams, settings: Settings) -> np.ndarray:
    """``M_j = max_r rt_j(r)`` over feasible mixes, for every language ``j``: the most
    effective share its cap (and the others' bounds) lets it reach."""
    minus = _minus_effective_share(problem.form)
    return np.asarray([-_solve_on_law(minus, problem, params, pick, settings)[1]
                       for pick in np.eye(len(problem.lower))])


def _lowest_reachable(problem: Problem, params: LawParams, free: np.ndarray,
                      settings: Settings, steps: int) -> TwoStep:
    """Step 2 for the ``free`` languages: the smallest ``lam`` whose ``rt(lam)`` a feasible
    mix reaches, by bisection on ``log lam``."""
    benefit = weighted_benefit(params, problem.tokens_scaled, problem.weights)
    high = float(np.max(benefit[free]))
    ok, shares, target = _reach(problem, params, high, free, settings)
    for _ in range(200):
        if ok:
            break
        high *= 4.0
        ok, shares, target = _reach(problem, params, high, free, settings)
    low = high
    for _ in range(200):
        low /= 4.0
        if not _reach(problem, params, low, free, settings)[0]:
            break
    best = TwoStep(shares, high, target)
    for _ in range(steps):
        middle = float(np.sqrt(low * high))
        ok, shares, target = _reach(problem, params, middle, free, settings)
        if ok:
            high, best = middle, TwoStep(shares, middle, target)
        else:
            low = middle
    return best


def two_step_mix(problem: Problem, settings: Settings = DEFAULT_SETTINGS,
                 steps: int = 60) -> TwoStep:
    """CLIMB's two-step solver on the point estimate (posterior means).

    Step 1: the curve :func:`equal_benefit_curve` of effective shares with equal weighted
    marginal benefits. Step 2: the largest point on it (smallest ``lam``) that a feasible
    nominal mix reaches, ``rt_i(r) >= rt_i(lam)`` for all ``i``: bisection on ``log lam``, each
    step inverting the interaction map by a constrained least-squares solve of the shortfall.

    Availability caps by water-filling, as the optimality conditions ask. Language ``j`` runs
    out of room at ``lam_j = g_j / M_j^(beta_j + 1)`` (``g_j`` its weighted benefit, ``M_j``
    the most effective share a feasible mix gives it, :func:`_room`). If the curve is still
    reachable just above the largest ``lam_j``, that cap binds before the sum of the shares
    does: the language is fixed at its cap, leaves the equal-benefit set, and step 2 starts
    again for the others (their ``lam`` falls further). Otherwise the sum binds and the
    bisection ends it. The procedure ignores the cross terms of the interaction map's
    Jacobian, so it approximates the direct plug-in optimum (exactly, without transfer); the
    caller reports the gap.
    """
    params = LawParams(*(p[0] for p in point_estimate(problem.params)))
    benefit = weighted_benefit(params, problem.tokens_scaled, problem.weights)
    free = np.ones(len(problem.lower), dtype=bool)
    while free.sum() > 1:
        out_of_room = np.where(free, benefit / _room(problem, params, settings)
                               ** (params.beta + 1.0), -np.inf)
        capped = int(np.argmax(out_of_room))
        if not _reach(problem, params, CAP_PROBE * out_of_room[capped], free, settings,
                      CAP_REACH_TOLERANCE)[0]:
            break  # the sum of the shares binds first
        free[capped] = False
        problem = problem._replace(lower=np.where(free, problem.lower, problem.upper))
    return _lowest_reachable(problem, params, free, settings, steps)
